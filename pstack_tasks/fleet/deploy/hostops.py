"""Deploy, stop or inspect one host: the steps of :mod:`.steps` in order, timed, as a report row."""
from __future__ import annotations

import json
import shlex
import time

from pstack_tasks.fleet.deploy import service as svc
from pstack_tasks.fleet.deploy import steps
from pstack_tasks.fleet.deploy.remote import Facts, Host
from pstack_tasks.fleet.deploy.steps import HostReport, Plan
from pstack_tasks.fleet.deploy.wheelhouse import Wheelhouse


def _open(host: Host, plan: Plan, report: HostReport) -> tuple[Facts, str, str]:
    """Connect and probe the host: its facts, the worker's name (reported) and its directory."""
    facts = host.open()
    name = host.spec.name or facts.hostname
    report.name = name
    return facts, name, steps.directory(facts, plan.prefix, name)


def deploy_one(host: Host, plan: Plan, wheels: Wheelhouse, report: HostReport) -> None:
    """Install or upgrade in place, and (re)start only what changed or is not running."""
    facts, name, d = _open(host, plan, report)
    report.engine = plan.engine
    q = shlex.quote(d)
    steps.install_packages(host, facts)
    host.run(f"mkdir -p {q}/wheels && chmod 700 {q}", what="mkdir")
    state = steps.read_state(host, d)
    services = svc.services(name, plan.engine, plan.slots, plan.control, plan.groups, plan.users)
    new_wheel = state.get("wheel") != wheels.digest
    if new_wheel:
        steps.copy_wheels(host, wheels, d)
        steps.install_package(host, wheels, d, upgrade=bool(state.get("wheel")))
    config = steps.config_digest(facts, plan, services, d)
    new_config = state.get("config") != config
    if new_config:
        steps.write_config(host, facts, plan, services, d)
    restart = [s for s in services if new_wheel or new_config or not steps.is_running(host, facts, s, d)]
    report.started_at = float(host.run("date +%s.%N")) if restart else None
    for s in restart:
        host.run(svc.start_command(s, d, facts.systemd), privileged=facts.systemd, what=f"starting {s.name}")
    new_state = {"wheel": wheels.digest, "config": config, "version": wheels.version, "name": name,
                 "engine": plan.engine, "services": [s.name for s in services], "systemd": facts.systemd}
    host.put_text(json.dumps(new_state), f"{d}/{steps.STATE}", 0o600)
    report.version = wheels.version
    report.action = _action(state, new_wheel, new_config, restart)


def _action(state: dict[str, str], new_wheel: bool, new_config: bool, restart: list[svc.Service]) -> str:
    if not state:
        return "installed"
    if new_wheel:
        return "upgraded"
    if new_config:
        return "reconfigured"
    return "restarted" if restart else "unchanged"


def stop_one(host: Host, plan: Plan, report: HostReport) -> None:
    """Stop and remove the services, the unit files and the worker's directory (its env file too)."""
    facts, name, d = _open(host, plan, report)
    state = steps.read_state(host, d)
    report.engine, report.version = state.get("engine", "-"), state.get("version", "-")
    for s in svc.services(name, plan.engine, None, control=True):
        host.run(svc.stop_command(s, d, facts.systemd), privileged=facts.systemd, what=f"stopping {s.name}")
        if facts.systemd:
            host.run(f"rm -f {svc.UNIT_DIR}/{s.name}.service && systemctl daemon-reload", privileged=True,
                     what="removing the systemd unit")
    host.run(f"rm -rf {shlex.quote(d)}", what="removing the worker's directory")
    report.action = "stopped" if state else "absent"


def status_one(host: Host, plan: Plan, report: HostReport) -> None:
    """What the host has: the deployed version, and whether each service runs."""
    facts, name, d = _open(host, plan, report)
    state = steps.read_state(host, d)
    if not state:
        report.action = "absent"
        return
    report.engine, report.version = state.get("engine", "-"), state.get("version", "-")
    for s in svc.services(name, report.engine, None, control=True):
        if s.name in state.get("services", []):
            report.running[s.name] = "running" if steps.is_running(host, facts, s, d) else "stopped"
    states = {("control" if s.endswith("-control") else "worker"): v for s, v in report.running.items()}
    report.running.clear()
    report.action = states.get("worker", "-") if len(states) < 2 else ", ".join(f"{k} {v}" for k, v in states.items())


def timed(op: str, host: Host, plan: Plan, wheels: Wheelhouse | None, report: HostReport) -> None:
    """Run one operation on one host; its error (one line) goes in the report, never further."""
    from pstack_tasks.exceptions import PstackError
    t0 = time.monotonic()
    try:
        if op == "deploy":
            assert wheels is not None
            deploy_one(host, plan, wheels, report)
        elif op == "stop":
            stop_one(host, plan, report)
        else:
            status_one(host, plan, report)
    except PstackError as e:
        report.error = str(e)
    except Exception as e:  # a library's surprise: still one line, and the other hosts go on
        report.error = f"{host.spec.label}: {type(e).__name__}: {e}"
    finally:
        host.close()
        report.seconds = time.monotonic() - t0


__all__ = ["deploy_one", "stop_one", "status_one", "timed"]
