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
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from pstack_tasks.fleet.persistence.barrier import ONE_REGION_ENGINE
from pstack_tasks.fleet.persistence.binary import binary_client
from pstack_tasks.native.snapshot_files import request_dump
from pstack_tasks.protocol import ItemKind
from pstack_tasks.worker.guard import Guard

logger = logging.getLogger(__name__)


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
        with self.lock:  # one request at a time: the engine has one request file
            data = request_dump(self.dir, token, int(mode), deadline, wait_for_engine=True)
        if data is None:
            return
        binary_client().set(self.queues.snapshot(token, self.guard.region), data, ex=int(timeout) + 60)


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
