"""Real Celery worker fleets for tests, and the process-table checks that nothing they start outlives them."""
from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

#: processes this test run keeps for the whole session (its redis-server): never leftovers
SESSION_PIDS: set[int] = set()


def our_processes() -> list[str]:
    """Engines, socat relays and private redis-servers that are children of this test run, or
    orphans (re-parented to init) that a run of ours may have leaked."""
    out = subprocess.run(["ps", "-eo", "pid,ppid,args"], capture_output=True, text=True).stdout
    found = []
    for line in out.splitlines()[1:]:
        parts = line.split(None, 2)
        if len(parts) < 3:
            continue
        pid, ppid, args = int(parts[0]), int(parts[1]), parts[2]
        ours = "pstack-celery/engines/" in args or args.startswith("socat ") or "/socat " in args or \
            "redis-server" in args
        if ours and ppid in (os.getpid(), 1) and pid not in SESSION_PIDS:
            found.append(line.strip())
    return found



# --- a real fleet of Celery workers (docs/processes.md) ------------------------------------------

def processes_table() -> list[tuple[int, int, str]]:
    out = subprocess.run(["ps", "-eo", "pid,ppid,args"], capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines()[1:]:
        parts = line.split(None, 2)
        if len(parts) == 3:
            rows.append((int(parts[0]), int(parts[1]), parts[2]))
    return rows


def descendants(roots: set[int]) -> list[tuple[int, int, str]]:
    """Every process below the given pids (from one snapshot of the process table)."""
    rows = processes_table()
    found, frontier = [], set(roots)
    while frontier:
        nxt = set()
        for pid, ppid, args in rows:
            if ppid in frontier:
                found.append((pid, ppid, args))
                nxt.add(pid)
        frontier = nxt
    return found


def engines_and_relays(roots: set[int], prefix: str) -> list[str]:
    """Engines and socat relays under the given workers, and orphaned engines of this key prefix."""
    out = []
    for pid, _ppid, args in descendants(roots):
        if "pstack-celery/engines/" in args or "socat" in args.split(" ")[0]:
            out.append(f"{pid} {args}")
    for pid, ppid, args in processes_table():
        if ppid == 1 and f"--prefix {prefix}q:" in args:
            out.append(f"{pid} (orphan) {args}")
    return out


class WorkerFleet:
    """Celery worker processes of the stack on the test Redis, under a key prefix of their own."""

    def __init__(self, redis_url: str, members: list[tuple[str, str, int]], control: bool = True,
                 log_dir: Path | None = None, loglevel: str = "warning") -> None:
        """``log_dir``: keep each worker's log there (``fleet.fleet.log_path(node)``), at ``loglevel``."""
        import uuid

        from pstack_tasks.worker.local import Fleet
        self.prefix = f"pst{uuid.uuid4().hex[:8]}:"
        self.url = redis_url
        self.fleet = Fleet(redis_url, self.prefix, loglevel, log_dir)
        self.members = members
        for engine, host, slots in members:
            self.fleet.start(engine, host, slots)
        if control:
            self.fleet.start(None, "ctl", 4, control=True)
        self.fleet.wait_registered([(e, h) for e, h, _ in members])

    def worker_pids(self) -> set[int]:
        return {p.pid for p in self.fleet.workers.values()}

    def leftovers(self) -> list[str]:
        return engines_and_relays(self.worker_pids(), self.prefix)

    def close(self) -> None:
        import redis
        self.fleet.close()
        c = redis.Redis.from_url(self.url)
        for key in c.scan_iter(f"{self.prefix}*", count=1000):
            c.delete(key)
        c.close()


def fleet_env(fleet: WorkerFleet) -> AbstractContextManager[None]:
    """Point this process's client side (store, Celery app) at the fleet."""
    from pstack_tasks.worker.local import use_stack
    return use_stack(fleet.url, fleet.prefix)


@contextmanager
def started_fleet(redis_url: str, members: list[tuple[str, str, int]], control: bool = True,
                  log_dir: Path | None = None, loglevel: str = "warning") -> Iterator[WorkerFleet]:
    """A :class:`WorkerFleet` (the same arguments) with this process's client side pointed at it,
    closed afterwards (its workers stopped, its keys deleted)."""
    f = WorkerFleet(redis_url, members, control, log_dir, loglevel)
    try:
        with fleet_env(f):
            yield f
    finally:
        f.close()
