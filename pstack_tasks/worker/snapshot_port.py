"""Snapshots of a process of one region: its worker takes the requests and hands its engine's dump to Redis.

A split's engines take a snapshot request (item ``9``) from their Redis queues themselves; one
region's engine talks to no Redis (that keeps its loop free of any wire).  So for a process of
one region its worker does the engine's Redis part: on each heartbeat tick (worker/guard.py) it
pops the region's queue, which only snapshot requests reach; for each it writes the request
where the engine looks (``<dir>/request``), sends the engine SIGUSR1, waits for the dump it
writes at its next check (``<dir>/<token>.snap``, engines/psim/runtime/pstack_snapshot_signal.hpp)
and SETs it where a split's region would (``<pid>.snap.<token>.<region>``).  The requester
(fleet/persistence/barrier.py) cannot tell the difference.  One region has nothing in flight,
so its cut needs no barrier: the engine does not wait for the word to resume.
"""
from __future__ import annotations

import logging
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from pstack_tasks.fleet.persistence.barrier import ONE_REGION_ENGINE
from pstack_tasks.fleet.persistence.binary import binary_client
from pstack_tasks.protocol import ItemKind
from pstack_tasks.worker.guard import Guard

logger = logging.getLogger(__name__)
#: seconds between looks for the engine's dump
_POLL = 0.005


class SnapshotPort:
    """The Redis side of one region's snapshots: requests in from its queue, dumps out."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self.queues = guard.keys.queues(guard.pid)
        self.dir = Path(tempfile.mkdtemp(prefix=f"pstack-snap-{guard.pid}-"))
        self.lock = threading.Lock()

    def tick(self) -> None:
        """Called on the guard's heartbeat: answer each snapshot request waiting in the queue."""
        elements = self.guard.r.lpop(self.queues.queue(self.guard.region), 16) or []
        for element in elements:
            for item in str(element).split("\n"):
                if item.split(" ", 1)[0] == ItemKind.SNAPSHOT:
                    threading.Thread(target=self.answer, args=(item,), daemon=True,
                                     name=f"snapshot-{self.guard.pid}").start()
                elif item:
                    logger.warning("region %s/%s: dropped %r: a process of one region takes only snapshot "
                                   "requests from its queue", self.guard.pid, self.guard.region, item[:80])

    def answer(self, item: str) -> None:
        """Ask the engine for its dump and put it where the requester looks; give up after the
        request's timeout (the requester then says which region did not pause)."""
        try:
            self._answer(item)
        except (OSError, ValueError, redis.RedisError) as e:  # the region ended under it: the requester says so
            logger.info("region %s/%s: snapshot %r not answered: %s", self.guard.pid, self.guard.region, item, e)

    def _answer(self, item: str) -> None:
        _, token, mode, timeout_text = item.split(" ")
        timeout = float(timeout_text)
        deadline = time.monotonic() + timeout
        pid_file, dump = self.dir / "engine.pid", self.dir / f"{token}.snap"
        with self.lock:  # one request at a time: the engine has one request file
            while not pid_file.exists():  # the engine is still being built or loaded
                if not _wait(deadline, self.dir):
                    return
            tmp = self.dir / "request.tmp"
            tmp.write_text(f"{token} {mode}\n")
            os.replace(tmp, self.dir / "request")
            os.kill(int(pid_file.read_text()), signal.SIGUSR1)
            while not dump.exists():
                if not _wait(deadline, self.dir):
                    return
            data = dump.read_bytes()
            dump.unlink(missing_ok=True)
        binary_client().set(self.queues.snapshot(token, self.guard.region), data, ex=int(timeout) + 60)


def _wait(deadline: float, directory: Path) -> bool:
    """A short sleep; False once the request is out of time or the region has ended."""
    if time.monotonic() > deadline or not directory.exists():
        return False
    time.sleep(_POLL)
    return True


@contextmanager
def one_region_snapshots(guard: Guard, engine: str) -> Iterator[Path | None]:
    """While the block runs, this region's snapshot requests are answered if its process has one
    region (on the engine that writes dumps); yields the directory for its engine's
    ``--snapshot-dir`` (None: the engines take requests themselves, or cannot).  A fleet region
    whose peers are client engines (fleet/pyengine) is not alone: its engine pops its queue for
    their messages, and the port must not take them."""
    if len(guard.regions) != 1 or guard.clients or engine != ONE_REGION_ENGINE:
        yield None
        return
    port = SnapshotPort(guard)
    guard.on_tick.append(port.tick)
    try:
        yield port.dir
    finally:
        guard.on_tick.remove(port.tick)
        shutil.rmtree(port.dir, ignore_errors=True)


__all__ = ["SnapshotPort", "one_region_snapshots"]
