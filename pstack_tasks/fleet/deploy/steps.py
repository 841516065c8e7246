"""What ``pstack deploy`` does on one host: install, configure, (re)start, stop, report.

The host keeps ``<dir>/deployed.json``: the content hash of the installed wheel and of the
configuration (environment file and service files).  A second deploy compares them and restarts
only the services whose wheel or configuration changed, or that are not running.
"""
from __future__ import annotations

import hashlib
import json
import shlex
from dataclasses import dataclass, field

from pstack_tasks.exceptions import ConfigurationError
from pstack_tasks.fleet.deploy import service as svc
from pstack_tasks.fleet.deploy.remote import Facts, Host
from pstack_tasks.fleet.deploy.wheelhouse import Wheelhouse

STATE = "deployed.json"


@dataclass(frozen=True)
class Plan:
    """What every host gets: the worker's engine and slots, a control worker or not, its settings,
    and the groups and users its engine worker serves (none: everyone)."""

    engine: str
    slots: int | None
    control: bool
    env: dict[str, str]
    prefix: str | None = None
    groups: tuple[str, ...] = ()
    users: tuple[str, ...] = ()


@dataclass
class HostReport:
    """One row of the report: what happened on a host, or its error."""

    label: str
    name: str = "-"
    engine: str = "-"
    version: str = "-"
    action: str = "-"
    seconds: float = 0.0
    error: str | None = None
    #: host clock when its engine worker was (re)started: its registration must be newer
    started_at: float | None = None
    running: dict[str, str] = field(default_factory=dict)


def directory(facts: Facts, prefix: str | None, name: str) -> str:
    """Where a host's worker lives: ``PREFIX/NAME`` (default prefix /opt/pstack for root, else
    ~/.local/share/pstack), so two workers on one machine keep apart."""
    base = prefix or ("/opt/pstack" if facts.uid == 0 else "~/.local/share/pstack")
    if base.startswith("~"):
        base = facts.home + base[1:]
    return f"{base.rstrip('/')}/{name}"


def env_text(env: dict[str, str]) -> str:
    """The environment file: ``KEY='value'`` lines, read by systemd's EnvironmentFile and by sh."""
    lines = []
    for key, value in sorted(env.items()):
        if "'" in value or "\n" in value:
            raise ConfigurationError(f"{key}: a value with a quote or a newline cannot go in the environment file")
        lines.append(f"{key}='{value}'")
    return "# written by pstack deploy (docs/deployment.md); mode 0600\n" + "\n".join(lines) + "\n"


def install_packages(host: Host, facts: Facts) -> None:
    """apt-get install what the worker needs and the host lacks (root, or --sudo)."""
    if not facts.missing:
        return
    wanted = " ".join(facts.missing)
    host.run(f"DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {wanted} >/dev/null || "
             f"(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {wanted} >/dev/null)",
             privileged=True, what=f"apt-get install {wanted}")


def read_state(host: Host, d: str) -> dict[str, str]:
    text = host.run(f"cat {shlex.quote(d)}/{STATE} 2>/dev/null || true").strip()
    try:
        state = json.loads(text) if text else {}
    except json.JSONDecodeError:
        return {}
    return state if isinstance(state, dict) else {}


def copy_wheels(host: Host, wheels: Wheelhouse, d: str) -> None:
    """Copy the wheels the host lacks (by file hash); drop the ones no longer in the wheelhouse."""
    q = shlex.quote(d)
    have = {}
    for line in host.run(f"cd {q}/wheels && sha256sum -- *.whl 2>/dev/null || true").splitlines():
        digest, _, name = line.partition("  ")
        have[name.strip()] = digest
    local = {w.name: w for w in wheels.wheels()}
    for name, path in local.items():
        if have.get(name) != hashlib.sha256(path.read_bytes()).hexdigest():
            host.put_file(str(path), f"{d}/wheels/{name}")
    stale = [shlex.quote(f"{d}/wheels/{n}") for n in have if n not in local]
    if stale:
        host.run("rm -f " + " ".join(stale))


def install_package(host: Host, wheels: Wheelhouse, d: str, upgrade: bool) -> None:
    """The package into the host's virtualenv, from the copied wheels only (no registry)."""
    q = shlex.quote(d)
    pip = f"{q}/venv/bin/pip install -q --disable-pip-version-check --no-index --find-links {q}/wheels"
    wheel = f"{q}/wheels/{shlex.quote(wheels.package.name)}"
    host.run(f"[ -x {q}/venv/bin/python ] || python3 -m venv {q}/venv", what="python3 -m venv")
    host.run(f"{pip} {wheel}", what="pip install")
    if upgrade:  # same version number, new content: pip would keep the old files
        host.run(f"{pip} --no-deps --force-reinstall {wheel}", what="pip install (upgrade)")


def write_config(host: Host, facts: Facts, plan: Plan, services: list[svc.Service], d: str) -> None:
    """The environment file (0600, in a 0700 directory) and each service's unit or supervisor."""
    host.put_text(env_text(plan.env), f"{d}/env", 0o600)
    for s in services:
        if facts.systemd:
            host.put_text(svc.unit_text(s, d, facts.user), f"{d}/{s.name}.service", 0o644)
            host.run(f"install -m 644 {shlex.quote(d)}/{s.name}.service {svc.UNIT_DIR}/{s.name}.service",
                     privileged=True, what="installing the systemd unit")
        else:
            host.put_text(svc.supervisor_text(s, d), f"{d}/{s.name}.sh", 0o700)


def config_digest(facts: Facts, plan: Plan, services: list[svc.Service], d: str) -> str:
    parts = [env_text(plan.env), str(facts.systemd)]
    parts += [svc.unit_text(s, d, facts.user) + svc.supervisor_text(s, d) for s in services]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def is_running(host: Host, facts: Facts, s: svc.Service, d: str) -> bool:
    return host.run(svc.running_command(s, d, facts.systemd)).strip() == "running"


__all__ = ["Plan", "HostReport", "directory", "env_text", "install_packages", "read_state", "copy_wheels",
           "install_package", "write_config", "config_digest", "is_running", "STATE"]
