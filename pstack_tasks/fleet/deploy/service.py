"""A worker service on a host: a systemd unit where systemd runs, else a supervisor script.

Both restart the worker when it exits.  The unit is ``/etc/systemd/system/<service>.service``;
the supervisor is ``<dir>/<service>.sh``, started with ``setsid`` so that its process group is the
service, with its pid in ``<dir>/<service>.pid`` and its log in ``<dir>/<service>.log``
(docs/deployment.md).  This module only writes text: :mod:`.remote` runs it on the host.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from importlib import resources

UNIT_DIR = "/etc/systemd/system"
#: seconds a stopping worker gets for its warm shutdown before it is killed
STOP_GRACE = 30


@dataclass(frozen=True)
class Service:
    """One worker service: its name on the host and the ``pstack worker`` arguments it runs."""

    name: str
    args: tuple[str, ...]
    engine: str | None  # None: a control worker

    def argv(self) -> str:
        return " ".join(shlex.quote(a) for a in self.args)


def services(name: str, engine: str, slots: int | None, control: bool, groups: tuple[str, ...] = (),
             users: tuple[str, ...] = ()) -> list[Service]:
    """The services of one host: its engine worker (serving only ``groups`` and ``users`` when
    given: ``pstack worker --group/--user``, docs/fleet.md), and a control worker with ``--control``
    (which serves every process)."""
    args = ["--engine", engine, "--name", name]
    if slots:
        args += ["--slots", str(slots)]
    for group in groups:
        args += ["--group", group]
    for user in users:
        args += ["--user", user]
    out = [Service(f"pstack-{name}", tuple(args), engine)]
    if control:
        out.append(Service(f"pstack-{name}-control", ("--control", "--name", name), None))
    return out


def _template(file: str, **values: str) -> str:
    text = resources.files(__package__).joinpath(file).read_text()
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    return text


def unit_text(service: Service, directory: str, user: str) -> str:
    """The systemd unit of ``service``: the environment file read by systemd, never a command line."""
    return _template("worker.service", SERVICE=service.name, DIR=directory, USER=user, ARGS=service.argv())


def supervisor_text(service: Service, directory: str) -> str:
    """The supervisor script of ``service`` (hosts without systemd)."""
    return _template("supervise.sh", SERVICE=service.name, DIR=directory, ARGS=service.argv())


def start_command(service: Service, directory: str, systemd: bool) -> str:
    """(Re)start: the running service stops first (its warm shutdown), then starts anew."""
    if systemd:
        return f"systemctl daemon-reload && systemctl enable --quiet {service.name} && systemctl restart {service.name}"
    d, s = shlex.quote(directory), service.name
    return (f"{stop_command(service, directory, systemd)}; "
            f"setsid -f sh {d}/{s}.sh >>{d}/{s}.log 2>&1 </dev/null; "
            f"for i in $(seq 50); do [ -s {d}/{s}.pid ] && break; sleep 0.1; done; test -s {d}/{s}.pid")


def stop_command(service: Service, directory: str, systemd: bool) -> str:
    """Stop, waiting out the warm shutdown; then kill what is left of the process group."""
    if systemd:
        return f"systemctl disable --quiet --now {service.name} 2>/dev/null; true"
    d, s = shlex.quote(directory), service.name
    return (f"if [ -s {d}/{s}.pid ]; then p=$(cat {d}/{s}.pid); kill -TERM $p 2>/dev/null; "
            f"for i in $(seq {STOP_GRACE * 10}); do kill -0 $p 2>/dev/null || break; sleep 0.1; done; "
            f"kill -KILL -- -$p 2>/dev/null; rm -f {d}/{s}.pid {d}/{s}.worker.pid; fi; true")


def running_command(service: Service, directory: str, systemd: bool) -> str:
    """Prints ``running`` or ``stopped``."""
    if systemd:
        return f"systemctl is-active --quiet {service.name} && echo running || echo stopped"
    d, s = shlex.quote(directory), service.name
    return f"[ -s {d}/{s}.pid ] && kill -0 $(cat {d}/{s}.pid) 2>/dev/null && echo running || echo stopped"


__all__ = ["Service", "services", "unit_text", "supervisor_text", "start_command", "stop_command",
           "running_command", "UNIT_DIR"]
