"""Child-process hygiene: engines and socat never outlive the process that started them, each
runs in a process group of its own, and none is handed the Redis credentials."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Collection
from functools import lru_cache
from typing import IO, Any

_PR_SET_PDEATHSIG = 1

#: never handed to engines or socat: handler code is the user's native code and could read them
SECRET_VARIABLES = ("PSTACK_REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "REDISCLI_AUTH",
                    "FLOWER_BASIC_AUTH")

#: what a child's standard stream may be given: a descriptor, a file, or PIPE / DEVNULL
Stream = int | IO[Any] | None


def child_env() -> dict[str, str]:
    """The environment engines and relays run with: ours, less the Redis credentials."""
    return {k: v for k, v in os.environ.items() if k not in SECRET_VARIABLES}


@lru_cache(maxsize=1)
def _prctl() -> Callable[..., int] | None:
    """libc's prctl, loaded on first use: ctypes costs milliseconds to import, and a psim run
    (which starts its children without a hook) never needs it."""
    import ctypes
    try:
        prctl: Callable[..., int] = ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except OSError:  # not Linux/glibc: rely on explicit kills only
        return None
    return prctl


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (a pool process of a worker)."""
    prctl = _prctl()
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def child_preexec() -> Callable[[], None]:
    """The ``preexec_fn`` of a long-lived child (redis-server, a worker): in the child, before
    exec, it takes its own process group and asks for SIGKILL when the parent dies.  libc is
    loaded here, in the parent: the hook runs between fork and exec, where nothing should import."""
    prctl = _prctl()

    def hook() -> None:
        os.setpgrp()
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    return hook


def start_in_own_group(cmd: list[str], stdin: Stream, stdout: Stream, stderr: Stream,
                       pass_fds: Collection[int] = ()) -> subprocess.Popen[bytes]:
    """Start a child in a process group of its own (:func:`kill_group`), with :func:`child_env`.

    No pre-exec hook on Python 3.11 and later: a hook makes Python fork the whole (large)
    worker instead of vfork-ing, ~7 ms of CPU per child.  The child stays in our session (a
    new session would also be a new scheduler autogroup, slowing the engine-socat-Redis round
    trips).  Children follow their parent themselves (the engine's ``--parent-pid``; socat
    exits at end of file on its input).
    """
    if sys.version_info >= (3, 11):
        return subprocess.Popen(cmd, stdin=stdin, stdout=stdout, stderr=stderr, pass_fds=pass_fds,
                                process_group=0, env=child_env())
    return subprocess.Popen(cmd, stdin=stdin, stdout=stdout, stderr=stderr, pass_fds=pass_fds,  # 3.10: no
                            preexec_fn=os.setpgrp, env=child_env())  # process_group, so a hook (fork)


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group of a child started in a group of its own (:func:`child_preexec`,
    :func:`start_in_own_group`), then reap it."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        pass
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            try:
                stream.close()
            except OSError:
                pass
