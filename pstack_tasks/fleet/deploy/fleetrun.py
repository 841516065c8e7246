"""Every host at once: one thread per host, then the fleet's registrations in Redis.

A host's failure is its report row's error; the other hosts go on.  After deploying, each engine
worker that was (re)started must register in the fleet's ledger (``pstack engines``) with a
registration newer than its start; its slots and the time taken end its row.
"""
from __future__ import annotations

import threading
import time
from typing import Any

from pstack_tasks.fleet.deploy.hostops import timed
from pstack_tasks.fleet.deploy.hosts import HostSpec
from pstack_tasks.fleet.deploy.remote import Host
from pstack_tasks.fleet.deploy.steps import HostReport, Plan
from pstack_tasks.fleet.deploy.wheelhouse import Wheelhouse

#: seconds a deployed worker gets to register (a restarted one waits out its predecessor's heartbeat)
REGISTER_TIMEOUT = 90.0


def on_hosts(op: str, hosts: list[HostSpec], plan: Plan, wheels: Wheelhouse | None = None,
             identity: str | None = None, sudo: bool = False) -> list[HostReport]:
    """Run ``op`` (deploy, stop, status) on every host in parallel; one report per host, in order."""
    reports = [HostReport(h.label) for h in hosts]
    threads = []
    for spec, report in zip(hosts, reports):
        t = threading.Thread(target=_one, args=(op, spec, plan, wheels, identity, sudo, report),
                             name=f"deploy-{spec.label}", daemon=True)
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    return reports


def _one(op: str, spec: HostSpec, plan: Plan, wheels: Wheelhouse | None, identity: str | None, sudo: bool,
         report: HostReport) -> None:
    try:
        host = Host(spec, identity, sudo)
    except Exception as e:
        report.error = f"{spec.label}: {type(e).__name__}: {e}"
        return
    timed(op, host, plan, wheels, report)


def registrations() -> dict[tuple[str, str], dict[str, Any]]:
    """The fleet's engine workers by (engine, host name)."""
    from pstack_tasks.fleet.client import engines
    return {(w["engine"], w["host"]): w for w in engines()}


def wait_registered(reports: list[HostReport], t0: float, timeout: float = REGISTER_TIMEOUT) -> None:
    """Wait for each deployed host's engine worker to register; a worker that does not is an error.

    ``t0``: when the deploy began (monotonic), so each row's time runs until its registration.
    """
    pending = {id(r): r for r in reports if r.error is None}
    deadline = time.monotonic() + timeout
    while pending:
        fleet = registrations()
        for key, r in list(pending.items()):
            w = fleet.get((r.engine, r.name))
            if w and w.get("alive") and (r.started_at is None or float(w.get("since", 0)) >= r.started_at - 1):
                r.running["slots"] = str(w["slots"])
                r.seconds = time.monotonic() - t0
                del pending[key]
        if not pending:
            return
        if time.monotonic() >= deadline:
            for r in pending.values():
                r.error = (f"{r.label}: the worker {r.engine}@{r.name} did not register within {timeout:g} s "
                           f"(its log: the service's journal, or <dir>/pstack-{r.name}.log)")
            return
        time.sleep(0.25)


def with_registrations(reports: list[HostReport]) -> None:
    """``--status``: each host's slots and liveness as the fleet's Redis sees them."""
    fleet = registrations()
    for r in reports:
        w = fleet.get((r.engine, r.name))
        if w:
            r.running["slots"] = str(w["slots"])
            r.running["registered"] = "yes" if w.get("alive") else "offline"
        elif r.error is None:
            r.running["registered"] = "no"


__all__ = ["on_hosts", "wait_registered", "with_registrations", "registrations", "REGISTER_TIMEOUT"]
