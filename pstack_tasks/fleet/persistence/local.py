"""Snapshots and checkpoints of a ``psim`` run in one region, on this machine (docs/persistence.md, "psim").

The run's engine is started with ``--snapshot-dir`` (a private directory made here): SIGUSR1 asks
it for a dump at its next check, written to a file (engines/psim/runtime/pstack_snapshot_signal.hpp),
as a one-region process's worker asks on the fleet.  A snapshot becomes the JSON ``pstack
snapshot`` prints (:func:`~pstack_tasks.fleet.persistence.snapshots.view`), a checkpoint the resume
file ``psim --resume`` (and ``restart``) start from: one region has nothing in flight, so one dump is
the whole cut.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import threading
import time
from pathlib import Path

from pstack_tasks.config import settings
from pstack_tasks.exceptions import ProcessError
from pstack_tasks.fleet.persistence.barrier import MODE_NO_STATES, MODE_STATES, Cut
from pstack_tasks.fleet.persistence.dumps import SUPERVISOR_NOT_PLAIN, read_dump
from pstack_tasks.fleet.persistence.resume_file import resume_bytes
from pstack_tasks.fleet.persistence.snapshots import view

#: seconds between looks for the engine's dump
_POLL = 0.005


class LocalSnapshots:
    """The snapshots and checkpoints of one psim run: files named after the application in ``out``."""

    def __init__(self, app: str, out: Path, directory: Path) -> None:
        self.dir = directory  #: the engine's --snapshot-dir
        self.out, self.stem = out, Path(app).stem
        self.snapshots = self.checkpoints = 0
        self.lock = threading.Lock()  # one request at a time: the engine has one request file

    def cut(self, mode: int) -> Cut:
        """Ask the engine for a dump and wait for it (PSTACK_SNAPSHOT_TIMEOUT at most)."""
        timeout = settings().snapshot_timeout
        with self.lock:
            token = secrets.token_hex(8)
            tmp = self.dir / "request.tmp"
            tmp.write_text(f"{token} {mode}\n")
            os.replace(tmp, self.dir / "request")
            t0 = time.monotonic()
            try:
                os.kill(int((self.dir / "engine.pid").read_text()), signal.SIGUSR1)
            except (OSError, ValueError):
                raise ProcessError("no snapshot: the engine has not started yet, or has ended") from None
            dump = self.dir / f"{token}.snap"
            while not dump.exists():
                if time.monotonic() - t0 > timeout:
                    raise ProcessError(f"no snapshot: the engine did not answer within {timeout:g} s "
                                       "(a handler that runs long, or the run ended)")
                time.sleep(_POLL)
            raw = dump.read_bytes()
            dump.unlink()
        pause = round(time.monotonic() - t0, 4)
        return Cut(pid=0, record={}, dumps={0: read_dump(raw, 0, 0)}, queued={0: []}, idle_count=0,
                   pause_seconds=pause, taken=time.time())

    def snapshot(self) -> Path:
        """A snapshot, as ``pstack snapshot`` shows one, written to ``<out>/<app>.snapshot-<n>.json``."""
        shown = view(self.cut(MODE_STATES))
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
        return path, cut.dumps[0].counters["delivered"]


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


__all__ = ["LocalSnapshots"]
