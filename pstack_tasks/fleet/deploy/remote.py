"""One host over SSH (fabric): run a command, copy a file, learn what the host has.

Every failure becomes :class:`HostFailed` with one line naming the host and what failed
(unreachable, authentication, a command's last line of error output), so that ``pstack deploy``
reports it and goes on with the other hosts.
"""
from __future__ import annotations

import io
import shlex
from dataclasses import dataclass, field
from typing import Any

from pstack_tasks.exceptions import ServiceUnavailable
from pstack_tasks.fleet.deploy.hosts import HostSpec

#: seconds to wait for a host's SSH port
CONNECT_TIMEOUT = 10.0
#: the Debian packages a worker needs, by the command that shows each is there
NEEDED = (("command -v socat", "socat"), ("command -v g++", "g++"),
          ("python3 -c 'import venv, ensurepip'", "python3-venv"))


class HostFailed(ServiceUnavailable):
    """A host could not be deployed to (unreachable, refused, a step failed); the message is one line."""


@dataclass
class Facts:
    """What a host is: its user, home, short name, clock, init system and missing packages."""

    uid: int
    user: str
    home: str
    hostname: str
    now: float
    python: str
    systemd: bool
    missing: list[str] = field(default_factory=list)


def _probe_script() -> str:
    lines = ['printf "uid=%s\\nuser=%s\\nhome=%s\\n" "$(id -u)" "$(id -un)" "$HOME"',
             'echo "hostname=$(hostname -s 2>/dev/null || hostname)"', 'echo "now=$(date +%s.%N)"',
             'echo "python=$(python3 -c \'import sys; print(\"%d.%d\" % sys.version_info[:2])\' 2>/dev/null)"',
             '[ -d /run/systemd/system ] && echo systemd=1']
    lines += [f"{check} >/dev/null 2>&1 || echo missing={package}" for check, package in NEEDED]
    return "; ".join(lines) + "; true"


class Host:
    """An SSH connection to one host; ``sudo``: privileged commands go through ``sudo -n``."""

    def __init__(self, spec: HostSpec, identity: str | None = None, sudo: bool = False) -> None:
        from fabric import Connection
        self.spec, self.sudo = spec, sudo
        kwargs: dict[str, Any] = {"banner_timeout": CONNECT_TIMEOUT,
                                  "auth_timeout": CONNECT_TIMEOUT}
        if identity:
            kwargs["key_filename"] = [identity]
        self.conn = Connection(spec.host, user=spec.user, port=spec.port, connect_timeout=CONNECT_TIMEOUT,
                               connect_kwargs=kwargs)
        self.facts: Facts | None = None

    def fail(self, what: str) -> HostFailed:
        return HostFailed(f"{self.spec.label}: {what}")

    def open(self) -> Facts:
        """Connect and probe the host."""
        try:
            self.conn.open()
        except OSError as e:  # refused, timed out, no route (paramiko: NoValidConnectionsError)
            raise self.fail(f"unreachable: {e.strerror or e}") from None
        except Exception as e:  # paramiko's authentication and protocol errors
            raise self.fail(f"SSH refused: {type(e).__name__}: {e}") from None
        values: dict[str, str] = {}
        missing = []
        for line in self.run(_probe_script()).splitlines():
            key, _, value = line.partition("=")
            if key == "missing":
                missing.append(value)
            else:
                values[key] = value
        self.facts = Facts(uid=int(values["uid"]), user=values["user"], home=values["home"],
                           hostname=values["hostname"], now=float(values["now"]), python=values.get("python", ""),
                           systemd="systemd" in values, missing=missing)
        return self.facts

    def run(self, command: str, privileged: bool = False, what: str | None = None) -> str:
        """Run a shell command; its stdout.  A non-zero status fails with the last line of its stderr."""
        if privileged and self.facts is not None and self.facts.uid != 0:
            if not self.sudo:
                raise self.fail(f"{what or 'this step'} needs root: log in as root or give --sudo")
            command = f"sudo -n sh -c {shlex.quote(command)}"
        try:
            done = self.conn.run(command, hide=True, warn=True, in_stream=False)
        except Exception as e:
            raise self.fail(f"{what or 'command'}: SSH failed: {type(e).__name__}: {e}") from None
        if done.exited != 0:
            err = (done.stderr.strip() or done.stdout.strip() or f"exit status {done.exited}").splitlines()[-1]
            if "sudo" in err and "password" in err:
                err = "sudo needs a password here (give the user passwordless sudo, or log in as root)"
            raise self.fail(f"{what or command.split()[0]} failed: {err}")
        return str(done.stdout)

    def put_text(self, text: str, remote: str, mode: int = 0o600) -> None:
        """Write a file on the host over SFTP (its content never on a command line), then set its mode."""
        try:
            self.conn.put(io.BytesIO(text.encode()), remote=remote)
        except Exception as e:
            raise self.fail(f"copying {remote} failed: {e}") from None
        self.run(f"chmod {mode:o} {shlex.quote(remote)}", what="chmod")

    def put_file(self, local: str, remote: str) -> None:
        try:
            self.conn.put(local, remote=remote)
        except Exception as e:
            raise self.fail(f"copying {local} failed: {e}") from None

    def close(self) -> None:
        self.conn.close()


__all__ = ["Host", "HostFailed", "Facts", "NEEDED", "CONNECT_TIMEOUT"]
