"""``psim``'s snapshots and checkpoints: SIGUSR1 writes a snapshot, ``--checkpoint-every S`` checkpoints.

A run in one region is started with a private ``--snapshot-dir`` so that its engine takes SIGUSR1
(docs/persistence.md, "psim"); psim's own SIGUSR1 asks it for a snapshot, written beside the
checkpoints as ``<app>.snapshot-<n>.json``, and ``--checkpoint-every S`` writes ``<app>.<n>.ckpt``
every S seconds, for ``psim --resume``.  Each file is named on stderr.  A split (``--rmap``) is
paused through its Redis instead, as a fleet process is.  The fleet's modules (Redis among their
imports) are imported only when a snapshot or checkpoint is taken: psim's start-up stays as it was.
"""
from __future__ import annotations

import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from pstack_tasks.exceptions import PstackError


class _Persistence:
    def __init__(self, app: str, out: Path, directory: Path) -> None:
        self.app, self.out, self.dir = app, out, directory
        self.stopped = threading.Event()
        self._local: Any = None
        self._lock = threading.Lock()

    def local(self) -> Any:
        with self._lock:  # one LocalSnapshots, whichever thread asks first
            if self._local is None:
                from pstack_tasks.fleet.persistence.local import LocalSnapshots  # here: Redis's imports only if used
                self._local = LocalSnapshots(self.app, self.out, self.dir)
            return self._local

    def on_split(self, url: str, pid: int, regions: list[int]) -> None:
        """A split run's Redis, pid and regions: its snapshots go through Redis, as a fleet process's."""
        self.local().split = (url, pid, regions)

    def snapshot(self) -> None:
        try:
            path = self.local().snapshot()
            _say(f"snapshot -> {path}")
        except PstackError as e:
            _say(f"no snapshot: {e}" if not str(e).startswith("no snapshot") else str(e))

    def checkpoints(self, every: float) -> None:
        while not self.stopped.wait(every):
            try:
                path, delivered = self.local().checkpoint()
                _say(f"checkpoint -> {path} ({delivered} delivered)")
            except PstackError as e:
                if not self.stopped.is_set():
                    _say(f"no checkpoint this time: {e}")


def _say(line: str) -> None:
    print(f"psim: {line}", file=sys.stderr, flush=True)


@contextmanager
def persistence(app: str, every: float, out: str | None) -> Iterator[tuple[str, Callable[[str, int, list[int]], None]]]:
    """While the run lasts: SIGUSR1 takes a snapshot, and checkpoints every ``every`` seconds
    (0: none) go to ``out`` (default: the current directory).  Yields the engine's snapshot
    directory (one region) and what a split run calls with its Redis URL, pid and regions."""
    directory = Path(tempfile.mkdtemp(prefix="pstack-psim-snap-"))
    state = _Persistence(app, Path(out or "."), directory)

    def on_usr1(signum: int, frame: FrameType | None) -> None:
        _start(state.snapshot, "psim-snapshot")

    previous = signal.signal(signal.SIGUSR1, on_usr1)
    if every > 0:
        _start(lambda: state.checkpoints(every), "psim-checkpoints")
    try:
        yield str(directory), state.on_split
    finally:
        state.stopped.set()
        signal.signal(signal.SIGUSR1, previous)
        shutil.rmtree(directory, ignore_errors=True)


def _start(target: Callable[[], None], name: str) -> None:
    """A thread of psim's that never takes SIGUSR1.  The kernel hands a process's signal to any
    thread that does not block it, and Python runs its handler only when the main thread next runs
    Python: taken by another thread, it would not interrupt the main thread's wait for the engine,
    and the snapshot would come at the run's end.  Blocked in every other thread, it does."""
    def blocked() -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
        target()
    threading.Thread(target=blocked, daemon=True, name=name).start()


__all__ = ["persistence"]
