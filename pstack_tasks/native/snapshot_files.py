"""Asking a one-region engine for its dump through its ``--snapshot-dir``.

The engine's side is engines/psim/runtime/pstack_snapshot_signal.hpp: it writes ``engine.pid`` once
it takes SIGUSR1, reads the request (``request``: ``<token> <mode>``) at its next check, and writes
its dump to ``<token>.snap`` through a rename.  Two askers use the same files: the worker of a
one-region fleet process (worker/snapshot_port.py) and psim (fleet/persistence/local.py); each
holds its own lock, as an engine has one request file.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

#: seconds between looks for the engine's files
_POLL = 0.005


def request_dump(directory: Path, token: str, mode: int, deadline: float, wait_for_engine: bool) -> bytes | None:
    """The engine's dump for request ``token`` in ``mode`` (as in the snapshot item), or None if
    ``deadline`` (``time.monotonic()``) passed or ``directory`` went away (the run ended).

    ``wait_for_engine``: wait for ``engine.pid`` (an engine still being built or loaded); without
    it, a missing or unreadable pid file raises OSError or ValueError at once.
    """
    pid_file, dump = directory / "engine.pid", directory / f"{token}.snap"
    while wait_for_engine and not pid_file.exists():
        if not _wait(deadline, directory):
            return None
    tmp = directory / "request.tmp"
    tmp.write_text(f"{token} {mode}\n")
    os.replace(tmp, directory / "request")
    os.kill(int(pid_file.read_text()), signal.SIGUSR1)
    while not dump.exists():
        if not _wait(deadline, directory):
            return None
    data = dump.read_bytes()
    dump.unlink(missing_ok=True)
    return data


def _wait(deadline: float, directory: Path) -> bool:
    """A short sleep; False once the request is out of time or the directory is gone."""
    if time.monotonic() > deadline or not directory.exists():
        return False
    time.sleep(_POLL)
    return True


__all__ = ["request_dump"]
