"""The hosts of ``pstack deploy``: ``[NAME=][USER@]HOST[:PORT]`` as the operator types them.

``NAME`` is the worker's name in the fleet (what ``rcon`` pins regions to, and what makes two
workers on one machine distinct); without it the host's own short host name is used.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from pstack_tasks.exceptions import ConfigurationError

_SPEC = re.compile(r"^(?:(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)=)?(?:(?P<user>[^@:=\s]+)@)?"
                   r"(?P<host>\[[0-9A-Fa-f:.]+\]|[^@:=\s\[\]]+)(?::(?P<port>\d{1,5}))?$")


@dataclass(frozen=True)
class HostSpec:
    """One host to deploy to; ``name`` is None until the host says its own name."""

    host: str
    user: str | None = None
    port: int = 22
    name: str | None = None

    @property
    def label(self) -> str:
        """How reports name the host: as it was given."""
        where = f"{self.user}@{self.host}" if self.user else self.host
        if self.port != 22:
            where = f"{where}:{self.port}"
        return f"{self.name}={where}" if self.name else where


def parse_host(text: str) -> HostSpec:
    """``[NAME=][USER@]HOST[:PORT]`` (an IPv6 address in brackets) as a :class:`HostSpec`."""
    m = _SPEC.match(text.strip())
    if not m:
        raise ConfigurationError(f"host {text!r}: expected [NAME=][USER@]HOST[:PORT]")
    port = int(m["port"]) if m["port"] else 22
    if not 0 < port < 65536:
        raise ConfigurationError(f"host {text!r}: port {port} is out of range")
    return HostSpec(host=m["host"].strip("[]"), user=m["user"], port=port, name=m["name"])


def parse_hosts(texts: list[str] | tuple[str, ...]) -> list[HostSpec]:
    """Every host, in order; the same host twice (same name, address and port) is refused."""
    hosts = [parse_host(t) for t in texts]
    seen: set[tuple[str | None, str, int]] = set()
    for h in hosts:
        key = (h.name, h.host, h.port)
        if key in seen:
            raise ConfigurationError(f"host {h.label} is given twice")
        seen.add(key)
    return hosts


__all__ = ["HostSpec", "parse_host", "parse_hosts"]
