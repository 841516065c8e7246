"""``pstack loadtest``: N processes from C concurrent clients, some killed at random, every one
accounted for afterwards (:mod:`audit`).

Each client is a thread with its share of the processes: it submits them one after another,
then waits for every one of them; beside it a killer thread kills those drawn for killing as
soon as each is Running (so kills hit running engines, not queued processes).  Threads share the stack's Redis client, a
thread-safe connection pool, so each talks to Redis over a connection of its own, as separate
client programs would.  The timing (submissions/s, processes/s, latency) is measured here; what
happened to each process is then read back from Redis by :func:`audit.audit`, which trusts no
client's view.
"""
from __future__ import annotations

import math
import queue
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis

from pstack_tasks.exceptions import ProcessFailed, ProcessNotFound, ProcessRefused, PstackError
from pstack_tasks.fleet import client, store
from pstack_tasks.fleet.audit import Audit, Outcome, audit
from pstack_tasks.fleet.keys import Keys

#: seconds between two looks at the states of the processes waiting to be killed
KILL_POLL = 0.01


@dataclass(frozen=True)
class LoadSpec:
    """What to run: how many processes, from how many clients, which application, what to kill."""

    processes: int
    clients: int
    xml: str
    rmap: Mapping[str, int]
    engine: str
    kill_fraction: float = 0.0
    seed: int = 0
    timeout: float = 600.0
    #: "Delivered messages" every Done process must report (None: not checked)
    expected_delivered: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class LoadReport:
    """The measured run and its audit."""

    spec: LoadSpec
    outcomes: list[Outcome]
    submit_wall: float
    wall: float
    latencies: list[float]
    audit: Audit

    @property
    def submissions_per_s(self) -> float:
        return self.spec.processes / self.submit_wall if self.submit_wall else 0.0

    @property
    def processes_per_s(self) -> float:
        return self.spec.processes / self.wall if self.wall else 0.0

    def percentile(self, q: float) -> float | None:
        """The ``q`` quantile (0-1) of the Done processes' latencies, nearest rank."""
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    @property
    def passed(self) -> bool:
        return self.audit.clean


def _kill_plan(spec: LoadSpec) -> set[int]:
    """The indices of the processes to kill: ``kill_fraction`` of them, drawn with ``seed``."""
    count = round(spec.processes * spec.kill_fraction)
    return set(random.Random(spec.seed).sample(range(spec.processes), count))


class _Killer(threading.Thread):
    """Kills a client's drawn processes once they run: it polls their states every
    :data:`KILL_POLL` s and kills each as soon as it is Running (one that ends first stays Done)."""

    def __init__(self, deadline: float) -> None:
        super().__init__(name="load-killer", daemon=True)
        self.deadline = deadline
        self.inbox: queue.SimpleQueue[int] = queue.SimpleQueue()
        self.closed = threading.Event()
        self.failures: dict[int, str] = {}

    def run(self) -> None:
        r, keys = store.client(), Keys.current()
        pending: list[int] = []
        while time.monotonic() < self.deadline:
            while not self.inbox.empty():
                pending.append(self.inbox.get())
            if not pending and self.closed.is_set() and self.inbox.empty():
                return
            if pending:
                pipe = r.pipeline(transaction=False)
                for pid in pending:
                    pipe.hget(keys.proc(pid), "state")
                states = pipe.execute()
                for pid, state in zip(pending, states):
                    if state == "Running":
                        self._kill(pid)
                pending = [pid for pid, state in zip(pending, states) if state in ("Submitted", "Waiting")]
            time.sleep(KILL_POLL)

    def _kill(self, pid: int) -> None:
        try:
            client.kill(pid)
        except (PstackError, redis.RedisError) as e:
            self.failures[pid] = f"kill failed: {e}"


class _Client:
    """One load client: submits its share, has the drawn ones killed, waits for all of its processes."""

    def __init__(self, spec: LoadSpec, outcomes: list[Outcome], deadline: float) -> None:
        self.spec, self.outcomes, self.deadline = spec, outcomes, deadline
        self.killer = _Killer(deadline)
        self.submitted_at = 0.0

    def run(self) -> None:
        self.killer.start()
        for o in self.outcomes:
            self._submit(o)
        self.submitted_at = time.monotonic()
        self.killer.closed.set()
        for o in self.outcomes:
            self._wait(o)
        self.killer.join(max(0.0, self.deadline - time.monotonic()))
        for o in self.outcomes:
            if o.pid in self.killer.failures:
                o.reason = self.killer.failures[o.pid]

    def _submit(self, o: Outcome) -> None:
        t0 = time.monotonic()
        try:
            o.pid = client.submit(self.spec.xml, rmap=self.spec.rmap, engine=self.spec.engine,
                                  options=self.spec.options).pid
        except ProcessRefused as e:
            o.state, o.reason = "Failed", str(e)
            o.pid = _pid_of(str(e))
        except (PstackError, redis.RedisError) as e:
            o.state, o.reason = "Failed", f"submission failed: {e}"
        o.submit_seconds = time.monotonic() - t0
        if o.kill and o.pid is not None and not o.state:
            self.killer.inbox.put(o.pid)

    def _wait(self, o: Outcome) -> None:
        if o.pid is None or o.state:
            return
        try:
            client.block_one(o.pid, max(0.0, self.deadline - time.monotonic()))
            o.state = "Done"
        except ProcessFailed as e:
            o.state, o.reason = e.state, e.reason
        except (ProcessNotFound, TimeoutError) as e:
            o.state, o.reason = "lost", str(e)
        except (PstackError, redis.RedisError) as e:
            o.state, o.reason = "lost", f"waiting failed: {e}"


def _pid_of(message: str) -> int | None:
    """The pid in ``process 7 refused: ...``."""
    words = message.split()
    return int(words[1]) if len(words) > 1 and words[0] == "process" and words[1].isdigit() else None


def run_load(spec: LoadSpec, leftover_processes: Callable[[], list[str]] | None = None) -> LoadReport:
    """Run the load, then audit every process; ``leftover_processes`` lists engines still running
    on this machine (embedded stack) once the processes have ended."""
    r, keys = store.client(), Keys.current()
    first_pid = int(r.get(keys.next_pid) or 0) + 1
    kill = _kill_plan(spec)
    outcomes = [Outcome(i, kill=i in kill) for i in range(spec.processes)]
    start = time.monotonic()
    clients = [_Client(spec, outcomes[c::spec.clients], start + spec.timeout) for c in range(spec.clients)]
    threads = [threading.Thread(target=c.run, name=f"load-client-{i}") for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - start
    submit_wall = max(c.submitted_at for c in clients) - start
    found = audit(r, keys, spec.engine, spec.expected_delivered, outcomes, first_pid, leftover_processes)
    return LoadReport(spec, outcomes, submit_wall, wall, found.latencies, found)


def summary(report: LoadReport) -> str:
    """The one-line summary: ``1000 processes: 900 done, 100 killed, 0 failed, 0 lost, 0 duplicated,
    41.2/s, p50 0.9 s, p99 3.1 s``."""
    a = report.audit

    def seconds(q: float) -> str:
        p = report.percentile(q)
        return "-" if p is None else f"{p:.1f} s"
    return (f"{report.spec.processes} processes: {len(a.done)} done, {len(a.killed)} killed, {len(a.failed)} failed, "
            f"{len(a.lost)} lost, {len(a.duplicated)} duplicated, {report.processes_per_s:.1f}/s, "
            f"p50 {seconds(0.5)}, p99 {seconds(0.99)}")


__all__ = ["LoadSpec", "Outcome", "LoadReport", "run_load", "summary"]
