"""Snapshots and checkpoints of a ``psim`` run on this machine (docs/persistence.md, "psim").

The run's engine is started with ``--snapshot-dir`` (a private directory made here): SIGUSR1 asks
it for a dump at its next check, written to a file (engines/psim/runtime/pstack_snapshot_signal.hpp),
as a one-region process's worker asks on the fleet.  A snapshot becomes the JSON ``pstack
snapshot`` prints (:func:`~pstack_tasks.fleet.persistence.snapshots.view`), a checkpoint the resume
file ``psim --resume`` (and ``restart``) start from: one region has nothing in flight, so one dump is
the whole cut.  A split run (``psim --rmap``) is paused as a fleet process is: the snapshot
item to every region's queue, the dumps read from its Redis with the queues, the regions let go
(:mod:`~pstack_tasks.fleet.persistence.barrier`), without a process record.
"""
from __future__ import annotations

import json
import os
import secrets
import threading
import time
from dataclasses import replace
from pathlib import Path

import redis

from pstack_tasks.config import settings
from pstack_tasks.exceptions import ProcessError
from pstack_tasks.fleet.persistence.barrier import MODE_NO_STATES, MODE_STATES, Cut, pause_regions
from pstack_tasks.fleet.persistence.dumps import SUPERVISOR_NOT_PLAIN, read_dump
from pstack_tasks.fleet.persistence.resume_file import resume_bytes
from pstack_tasks.fleet.persistence.snapshots import view
from pstack_tasks.graph.app_file import app_name
from pstack_tasks.native.prepare import prepare
from pstack_tasks.native.snapshot_files import request_dump
from pstack_tasks.protocol import QueueKeys

#: the snapshot item, counted into <pid>.active as an engine counts its sends; refused once the
#: counter is 0 (quiescence: the regions are stopping)
_PUSH = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n <= 0 then return 0 end
redis.call('INCRBY', KEYS[1], #KEYS - 1)
for i = 2, #KEYS do redis.call('RPUSH', KEYS[i], ARGV[1]) end
return 1
"""


class LocalSnapshots:
    """The snapshots and checkpoints of one psim run: files named after the application in ``out``."""

    def __init__(self, app: str, out: Path, directory: Path) -> None:
        self.dir = directory  #: the engine's --snapshot-dir
        self.app, self.out, self.stem = app, out, app_name(app)
        self.snapshots = self.checkpoints = 0
        self.lock = threading.Lock()  # one request at a time: the engine has one request file

    split: tuple[str, int, list[int]] | None = None  #: a split run's Redis URL, pid and regions, once known

    def cut(self, mode: int) -> Cut:
        """Ask the engine for a dump and wait for it (PSTACK_SNAPSHOT_TIMEOUT at most)."""
        timeout = settings().snapshot_timeout
        if self.split is not None:
            return _split_cut(*self.split, mode, timeout)
        with self.lock:
            t0 = time.monotonic()
            try:
                raw = request_dump(self.dir, secrets.token_hex(8), mode, t0 + timeout, wait_for_engine=False)
            except (OSError, ValueError):
                raise ProcessError("no snapshot: the engine has not started yet, or has ended") from None
            if raw is None:
                raise ProcessError(f"no snapshot: the engine did not answer within {timeout:g} s "
                                   "(a handler that runs long, or the run ended)")
        pause = round(time.monotonic() - t0, 4)
        return Cut(pid=0, record={}, dumps={0: read_dump(raw, 0, 0)}, queued={0: []}, idle_count=0,
                   pause_seconds=pause, taken=time.time())

    def snapshot(self) -> Path:
        """A snapshot, as ``pstack snapshot`` shows one, written to ``<out>/<app>.snapshot-<n>.json``."""
        shown = view(self.cut(MODE_STATES), prepare(self.app).app)
        self.snapshots += 1
        return _write(self.out / f"{self.stem}.snapshot-{self.snapshots}.json", json.dumps(shown).encode())

    def checkpoint(self) -> tuple[Path, int]:
        """A checkpoint, written to ``<out>/<app>.<n>.ckpt``; its path and delivered count."""
        cut = self.cut(MODE_NO_STATES)
        if any(d.supervisor == SUPERVISOR_NOT_PLAIN for d in cut.dumps.values()):
            raise ProcessError("the supervisor's state is not plain data (a std::vector, a pointer, ...): it cannot "
                               "be checkpointed")
        self.checkpoints += 1
        path = _write(self.out / f"{self.stem}.{self.checkpoints}.ckpt", resume_bytes(cut))
        return path, sum(d.counters["delivered"] for d in cut.dumps.values())


def _split_cut(url: str, pid: int, regions: list[int], mode: int, timeout: float) -> Cut:
    """Every region of a local split paused at one cut, read, and let go (the fleet's barrier,
    without a process record: the run's ``active`` counter says whether it is still running)."""
    client = redis.Redis.from_url(url, decode_responses=False, socket_timeout=timeout + 30)
    q = QueueKeys("", pid)

    def push(item: str) -> None:
        if not client.eval(_PUSH, 1 + len(regions), q.active, *[q.queue(x) for x in regions], item):
            raise ProcessError("no snapshot: the run is ending")

    def ended() -> str | None:
        return None if client.exists(q.active) else "no snapshot: the run ended before every region paused"

    try:
        paused = pause_regions(client, client, q, regions, mode, timeout, push, ended, what="no snapshot")
    finally:
        client.close()
    return replace(paused.cut(pid, {}), pid=0)


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


__all__ = ["LocalSnapshots"]
