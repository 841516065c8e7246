"""Periodic checkpoints of a running process (``run(..., checkpoint_every=S)``).

The worker running a process's lowest region takes them: one thread beside its engine that
checkpoints the whole process every S seconds until the region ends.  A checkpoint pauses every
region at one barrier (fleet/persistence/barrier.py), so it is taken from one place only.  A
checkpoint that fails (the process ending under it, a region too slow to pause) is logged and
the next one is tried at its time: the run itself never depends on it.
"""
from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from pstack_tasks.exceptions import PstackError
from pstack_tasks.fleet.persistence.checkpoints import checkpoint

logger = logging.getLogger(__name__)


class Checkpointer(threading.Thread):
    """Takes a checkpoint of ``pid`` every ``every`` seconds until stopped."""

    def __init__(self, pid: int, every: float) -> None:
        super().__init__(daemon=True, name=f"checkpoints-{pid}")
        self.pid, self.every = pid, every
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            try:
                entry = checkpoint(self.pid)
                logger.info("process %s: checkpoint %s (%s bytes, paused %.3f s)", self.pid, entry["id"],
                            entry["size"], entry["pause_seconds"])
            except PstackError as e:
                if not self.stopped.is_set():
                    logger.warning("process %s: no checkpoint this time: %s", self.pid, e)


@contextmanager
def checkpoints_while(pid: int, region: int, rec: dict[str, str]) -> Iterator[None]:
    """Periodic checkpoints while the block runs, if the process asks for them and this is its
    lowest region."""
    every = float(rec.get("checkpoint_every") or 0)
    regions = [int(x) for x in json.loads(rec.get("regions") or "[]")]
    if every <= 0 or not regions or region != min(regions):
        yield
        return
    thread = Checkpointer(pid, every)
    thread.start()
    try:
        yield
    finally:
        thread.stopped.set()
        thread.join(timeout=1.0)


__all__ = ["Checkpointer", "checkpoints_while"]
