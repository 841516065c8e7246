"""A private, throw-away redis-server for runs that have no PSTACK_REDIS_URL.

Lets ``psim --rmap`` (and the embedded default of the Celery stack) run with no
servers started by hand.  Nothing is persisted, and the server dies with us.
"""
from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import tempfile
import time
from types import TracebackType
from urllib.parse import quote

from pstack_tasks.exceptions import RedisUnavailable
from pstack_tasks.native.procs import child_preexec

logger = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedRedis:
    """``with EmbeddedRedis() as r: r.url`` — a redis-server on a free loopback port.

    With ``password``, the server requires it (``requirepass``) and ``url`` carries it, as a
    fleet with Redis authentication would be configured.
    """

    def __init__(self, password: str | None = None) -> None:
        self.password = password
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> EmbeddedRedis:
        exe = shutil.which("redis-server")
        if exe is None:
            raise RedisUnavailable("redis-server is not installed (apt-get install redis-server), "
                                   "or set PSTACK_REDIS_URL to a running server")
        self.dir = tempfile.TemporaryDirectory(prefix="pstack-redis-")
        for _ in range(5):
            self.port = free_port()
            # The password goes in through stdin ("-": read the config from it), not argv,
            # where anyone on the host could read it in the process table.
            self.proc = subprocess.Popen(
                [exe, "-", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", self.dir.name, "--loglevel", "warning", "--protected-mode", "no"],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=child_preexec())
            assert self.proc.stdin is not None
            if self.password:
                self.proc.stdin.write(f'requirepass "{self.password}"\n'.encode())
            self.proc.stdin.close()
            if self._wait_ready():
                logger.debug("embedded redis-server on port %d", self.port)
                return self
            self.stop()
        raise RedisUnavailable("could not start an embedded redis-server")

    def _wait_ready(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    if self.password:
                        s.sendall(b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(self.password.encode()),
                                                                             self.password.encode()))
                        if not s.recv(16).startswith(b"+OK"):
                            return False
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return True
            except OSError:
                time.sleep(0.02)
        return False

    def command(self, *args: str, timeout: float = 5.0) -> bytes:
        """Run one command over a plain socket (no redis-py: the embedded stack writes its stack id
        before anything imports it) and return its reply line; an error reply raises."""
        from pstack_tasks.native.relay import resp
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            pre = resp(["AUTH", self.password]) if self.password else b""
            s.sendall(pre + resp(list(args)))
            got = b""
            while got.count(b"\r\n") < (2 if self.password else 1):
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        lines = got.split(b"\r\n")
        reply = lines[1 if self.password else 0] if len(lines) > 2 or not self.password else b"-no reply"
        if not reply or reply.startswith(b"-"):
            raise RedisUnavailable(f"the embedded redis-server refused {args[0]}: {reply.decode(errors='replace')}")
        return reply

    def stop(self) -> None:
        """SIGKILL: nothing is persisted (no snapshot, no append-only file), so a shutdown has
        nothing to save and would only cost the command its time."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            if self.proc.stderr:
                self.proc.stderr.close()
            self.proc = None
        if self.dir is not None:
            self.dir.cleanup()
            self.dir = None

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
