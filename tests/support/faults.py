"""Helpers of the fault-matrix suite (tests/faults/): waiting with a bound, the engines of a fleet,
and a redis-server that a test can stop and start again on the same port, with or without AOF."""
from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from support.fleet import WorkerFleet, descendants

#: an application whose regions never end by themselves (a ring whose handlers never finish)
RING = "ring-oscillator-01.xml"
FOREVER = ("bool finished = deviceState->counter >= 10;", "bool finished = false;")
#: basic-01's receive handler, and a variant of it that sleeps forever in its third message
RECEIVE = 'deviceState->counter++;\n                        handler_log(1, "Received message %d"'
SLEEPY = RECEIVE.replace("deviceState->counter++;",
                         "deviceState->counter++;\n if (deviceState->counter == 3) { while (1) usleep(1000); }")


def wait_for(cond: Callable[[], object], timeout: float, what: str) -> float:
    """Wait until ``cond()`` is true; the seconds it took.  Fails naming ``what`` after ``timeout``."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if cond():
            return time.monotonic() - t0
        time.sleep(0.05)
    assert cond(), f"timed out after {timeout:g} s waiting for: {what}"
    return time.monotonic() - t0


def engines_of(fleet: WorkerFleet) -> list[tuple[int, str]]:
    """The engine processes running under the fleet's workers: (pid, command line)."""
    return [(pid, args) for pid, _, args in descendants(fleet.worker_pids()) if "pstack-celery/engines/" in args]


def relays_of(fleet: WorkerFleet) -> list[int]:
    """The socat relays under the fleet's workers."""
    return [pid for pid, _, args in descendants(fleet.worker_pids()) if args.split(" ")[0].endswith("socat")]


class RestartableRedis:
    """A redis-server on a fixed free port that a test stops and starts again (a Redis restart),
    keeping its data over the restart only with ``aof``."""

    def __init__(self, aof: bool) -> None:
        self.aof = aof
        self.dir = Path(tempfile.mkdtemp(prefix="pstack-faults-redis-"))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RestartableRedis:
        exe = shutil.which("redis-server")
        assert exe, "redis-server is not installed"
        self.proc = subprocess.Popen([exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "yes" if self.aof else "no", "--appendfsync", "always",
                                      "--dir", str(self.dir), "--loglevel", "warning"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.02)
        raise AssertionError("redis-server did not start")

    def stop(self) -> None:
        """Stop it as a crash would (SIGKILL: nothing saved but what AOF already has)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
            self.proc = None

    def restart(self, down: float = 0.3) -> None:
        self.stop()
        time.sleep(down)
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
