"""Watching running engines from one thread: their output as it comes, their exit, a stop asked for.

An engine prints its result on stdout and log or error lines on stderr.  Both pipes are read
here, with a selector, by the thread that waits for the engines: no reader threads and no
polling of the process table (a worker runs hundreds of small regions a minute, and each
thread or poll is CPU taken from them).  An engine has exited when both pipes are at end of
file; a stop asked for from outside (``should_stop``, polled every 0.1 s) is answered at once.
"""
from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from pstack_tasks.exceptions import RegionStopped
from pstack_tasks.protocol import ENGINE_ERROR_PREFIX, LOG_LINE_PREFIX

CHECK_INTERVAL = 0.1
#: how long a stopped engine may take to say where it was (its handler for SIGXCPU reports it)
WHERE_WAIT = 0.5
#: how much later an engine waiting for messages is stopped at its time limit than a busy one
IDLE_DEFER = 0.5
#: x86-64 system calls an engine waiting for messages sits in: read, poll, select, epoll_wait,
#: pselect6, ppoll, epoll_pwait
_WAITING_SYSCALLS = {"0", "7", "23", "232", "270", "271", "281"}
_WHERE = re.compile(r"\(in (handler .*)\)\s*$")


class OverTime(str):
    """A stop reason that is a run's wall-clock time limit: the watcher asks the engines where
    they were (which handler of which device) before they are stopped."""


class Engine:
    """A started engine and what it printed.

    Args:
        proc: the engine, started with ``stderr=PIPE`` and, when its result is wanted here,
            ``stdout=PIPE``.
        sink: receives each log line (``Log [...]``) as it arrives; None drops them.
        region: the region it runs, for messages about several at once.
    """

    def __init__(self, proc: subprocess.Popen[bytes], sink: Callable[[str], None] | None, region: int = 0) -> None:
        self.proc = proc
        self.sink = sink
        self.region = region
        self.errors: list[str] = []
        self.other: list[str] = []
        self.out = bytearray()
        self.status: int | None = None
        self._partial = b""
        self._open: dict[int, str] = {}
        for stream, kind in ((proc.stdout, "out"), (proc.stderr, "err")):
            if stream is not None:
                os.set_blocking(stream.fileno(), False)
                self._open[stream.fileno()] = kind

    def fds(self) -> list[int]:
        return list(self._open)

    def read(self, fd: int) -> bool:
        """Take what ``fd`` has; False at its end of file."""
        try:
            data = os.read(fd, 1 << 16)
        except BlockingIOError:
            return True
        if not data:
            if self._open.pop(fd) == "err" and self._partial:
                self._line(self._partial)
                self._partial = b""
            return False
        if self._open[fd] == "out":
            self.out += data
        else:
            *lines, self._partial = (self._partial + data).split(b"\n")
            for line in lines:
                self._line(line)
        return True

    def drained(self) -> bool:
        return not self._open

    def _line(self, raw: bytes) -> None:
        line = raw.decode(errors="replace").rstrip("\r")
        if line.startswith(ENGINE_ERROR_PREFIX):
            self.errors.append(line[len(ENGINE_ERROR_PREFIX):])
        elif line.startswith(LOG_LINE_PREFIX):
            if self.sink:
                self.sink(line)
        elif line:
            self.other.append(line)
            del self.other[:-20]

    def reason(self) -> str:
        """Why the engine failed (after it exited), in its own words when it said."""
        status = self.status or 0
        if self.errors:
            return self.errors[-1]
        if status < 0:
            return f"engine killed by signal {-status}"
        tail = "; ".join(self.other[-3:])
        return f"engine exited with status {status}" + (f": {tail}" if tail else "")


def wait_engines(engines: list[Engine], should_stop: Callable[[], str | None] | None = None
                 ) -> Engine | RegionStopped | None:
    """Wait until every engine has exited.

    Returns None when all exited with status 0; the first engine that did not, at once (the
    others still running: the caller stops them); or RegionStopped when ``should_stop``
    gave a reason first.
    """
    sel = selectors.DefaultSelector()
    try:
        for e in engines:
            for fd in e.fds():
                sel.register(fd, selectors.EVENT_READ, e)
        pending = [e for e in engines if e.status is None]
        next_check = time.monotonic() + CHECK_INTERVAL
        deferred = False
        while pending:
            for e in [e for e in pending if e.drained()]:
                e.status = e.proc.wait()
                pending.remove(e)
                if e.status != 0:
                    return e
            if not pending:
                break
            timeout = None
            if should_stop is not None:
                timeout = max(0.0, next_check - time.monotonic())
            for key, _ in sel.select(timeout):
                if not key.data.read(key.fd):
                    sel.unregister(key.fd)
            if should_stop is not None and time.monotonic() >= next_check:
                next_check = time.monotonic() + CHECK_INTERVAL
                reason = should_stop()
                if isinstance(reason, OverTime) and not deferred and all(map(_idle, pending)):
                    deferred = True  # a peer region stuck in a handler says where first
                    next_check = time.monotonic() + IDLE_DEFER
                elif reason:
                    return RegionStopped(_with_where(reason, pending))
        return None
    finally:
        sel.close()


def _with_where(reason: str, pending: list[Engine]) -> str:
    """``reason``, and for a time limit where the engines still running were: SIGXCPU makes a
    psim engine report its current (or last) handler and device, and exit (the caller kills the
    rest).  Several engines (a split) are named by region."""
    if not isinstance(reason, OverTime):
        return reason
    idle = [e for e in pending if _idle(e)] if len(pending) > 1 else []
    if len(idle) == len(pending):
        idle = []
    for e in pending:
        try:
            os.kill(e.proc.pid, signal.SIGXCPU)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + WHERE_WAIT
    while time.monotonic() < deadline and not all(e.drained() for e in pending):
        for e in pending:
            for fd in e.fds():
                e.read(fd)
        time.sleep(0.01)
    wheres = [(e.region, m.group(1)) for e in pending if e.errors and (m := _WHERE.search(e.errors[-1]))
              and e not in idle]
    if len(pending) == 1 and wheres:
        return f"{reason} (in {wheres[0][1]})"
    if wheres:
        return f"{reason} (" + "; ".join(f"region {r} in {w}" for r, w in wheres) + ")"
    return str(reason)


def _idle(e: Engine) -> bool:
    """Whether an engine is waiting for messages (blocked reading), not running a handler: its
    last handler is not where the time went."""
    try:
        call = Path(f"/proc/{e.proc.pid}/syscall").read_text().split(" ", 1)[0]
    except OSError:
        return False
    return call in _WAITING_SYSCALLS
