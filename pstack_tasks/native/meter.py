"""An engine's live counters, read a few times a second for progress (``status``, ``ps``, ``top``).

The engine maps a 16-byte file ({delivered, steps}, two little-endian 64-bit counters) and
updates it as it runs (``--progress-fd``, docs/engine-protocol.md).
"""
from __future__ import annotations

import os
import struct
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack

from pstack_tasks.config import settings
from pstack_tasks.native.options import RunOptions
from pstack_tasks.native.watch import OverTime

StopCheck = Callable[[], str | None]
#: seconds after a run's time limit at which the watcher stops an engine that did not stop itself
OVERTIME_GRACE = 1.0


class ProgressMeter:
    """The engine's live counters: 16 bytes ({delivered, steps}) of a file it maps and updates.

    The file is unlinked at once and handed over as a descriptor (``--progress-fd``), so a
    worker killed mid-run leaves nothing behind.  A process keeps the files of ended runs
    (zeroed) for its next ones: a worker starts hundreds of small regions a minute.
    """

    INTERVAL = 0.25
    _spare: list[int] = []
    _spare_lock = threading.Lock()

    def __init__(self, report: Callable[[int, int], None]) -> None:
        self.fd = self._take()
        os.pwrite(self.fd, bytes(16), 0)
        self.report = report
        self._next = 0.0

    @classmethod
    def _take(cls) -> int:
        with cls._spare_lock:
            if cls._spare:
                return cls._spare.pop()
        where = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
        fd, path = tempfile.mkstemp(prefix="pstack-progress-", dir=where)
        os.unlink(path)
        os.write(fd, bytes(16))
        return fd

    def args(self) -> list[str]:
        """The engine's command-line arguments that hand it this meter."""
        return ["--progress-fd", str(self.fd)]

    def read(self) -> tuple[int, int]:
        """``(delivered, steps)`` as the engine last wrote them."""
        delivered, steps = struct.unpack("<QQ", os.pread(self.fd, 16, 0))
        return int(delivered), int(steps)

    def tick(self, final: bool = False) -> None:
        """Report the counters if ``INTERVAL`` has passed since the last report (always if ``final``)."""
        now = time.monotonic()
        if final or now >= self._next:
            self._next = now + self.INTERVAL
            self.report(*self.read())

    def close(self) -> None:
        """Keep the file for the next run (its engine is gone: the caller killed or reaped it)."""
        with self._spare_lock:
            if len(self._spare) < 4:
                self._spare.append(self.fd)
                return
        os.close(self.fd)


def _forget_spare_meters() -> None:
    ProgressMeter._spare, ProgressMeter._spare_lock = [], threading.Lock()


os.register_at_fork(after_in_child=_forget_spare_meters)  # a forked child: the spares are its parent's


def open_meter(opts: RunOptions, stack: ExitStack) -> ProgressMeter | None:
    """A meter for the run when it wants progress (``opts.progress``), closed with ``stack``."""
    if opts.progress is None:
        return None
    meter = ProgressMeter(opts.progress)
    stack.callback(meter.close)
    return meter


def stop_check(opts: RunOptions, meter: ProgressMeter | None) -> StopCheck | None:
    """What the wait loops poll: progress reports, the run's wall-clock time limit, then whether to
    stop.  The engine stops itself at its time limit; a handler that loops or sleeps never lets
    it, so the watcher stops it ``OVERTIME_GRACE`` s later, the run failing with the limit named."""
    limit = float(opts.time_limit or 0) or settings().default_time_limit
    deadline = time.monotonic() + limit + OVERTIME_GRACE if limit > 0 else None
    if meter is None and deadline is None:
        return opts.should_stop

    def check() -> str | None:
        if meter is not None:
            meter.tick()
        if deadline is not None and time.monotonic() >= deadline:
            return OverTime(f"time limit of {limit:g} s exceeded")
        return opts.should_stop() if opts.should_stop else None
    return check
