"""Which processes a worker serves (SIMX's matching by group and user), and a process's group.

A worker started with ``pstack worker --group G [--group ...] [--user U ...]`` serves only the
processes of those groups and of those users; a worker that names neither serves everyone (so a
fleet that never uses groups behaves as before).  A process's group is ``run(..., group=G)``,
``pstack run --group G``, else ``PSTACK_GROUP``; its user is its owner (:mod:`users`).  The rule
is applied in Redis, by the ledger's scripts (``fleet/lua/lib.lua`` ``serves``), from what the
worker registered (:meth:`Ledger.register`); docs/fleet.md, "Worker groups", is the users' view.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pstack_tasks.config import settings
from pstack_tasks.exceptions import ConfigurationError


@dataclass(frozen=True)
class Serving:
    """The groups and users a worker serves; both empty: everyone."""

    groups: tuple[str, ...] = ()
    users: tuple[str, ...] = ()

    @property
    def restricted(self) -> bool:
        return bool(self.groups or self.users)

    def serves(self, user: str, group: str | None) -> bool:
        """The rule the ledger applies (lib.lua ``serves``), for tests and tables."""
        return not self.restricted or bool(group and group in self.groups) or user in self.users

    def as_dict(self) -> dict[str, Any]:
        return {"groups": list(self.groups), "users": list(self.users)}

    def text(self) -> str:
        """``groups g1,g2 users u`` or ``everyone``: what ``pstack engines`` and the logs say."""
        parts = [f"{what} {','.join(names)}" for what, names in (("groups", self.groups), ("users", self.users))
                 if names]
        return " ".join(parts) or "everyone"


EVERYONE = Serving()


def names(values: Iterable[str], what: str) -> tuple[str, ...]:
    """Group or user names as given (each may be comma-separated), checked: no blanks, no ``|``."""
    out: list[str] = []
    for value in values:
        for name in value.split(","):
            name = name.strip()
            if not name:
                continue
            if any(c.isspace() for c in name) or "|" in name:
                raise ConfigurationError(f"{what} name {name!r}: no spaces or '|' in a name")
            if name not in out:
                out.append(name)
    return tuple(out)


def worker_serving() -> Serving:
    """Whom this worker serves: ``PSTACK_WORKER_GROUPS`` and ``PSTACK_WORKER_USERS`` (what
    ``pstack worker --group/--user`` sets)."""
    s = settings()
    return Serving(names([s.worker_groups], "group"), names([s.worker_users], "user"))


def process_group(group: str | None) -> str | None:
    """A new process's group: the one given, else ``PSTACK_GROUP``, else none."""
    chosen = group if group is not None else settings().group
    if not chosen:
        return None
    found = names([chosen], "group")
    if len(found) != 1:
        raise ConfigurationError(f"group {chosen!r}: a process has one group")
    return found[0]


__all__ = ["Serving", "EVERYONE", "names", "worker_serving", "process_group"]
