"""socat relays between engines and Redis, and the idle ones a worker keeps for its next region.

An engine of a split writes Redis commands to a pipe and reads the replies from another; a
socat process (``socat - TCP:host:port``) joins the two pipes to one Redis connection
(docs/engine-protocol.md).  Starting socat costs a few milliseconds of CPU (it links OpenSSL,
Kerberos and libwrap) and Redis a new connection, which is as much as a small region's whole
run.  So a worker keeps a relay whose engine ended cleanly and hands it to its next region:

* an engine leaves its connection as it found it: it reads every reply it is owed before it
  exits (the engine does this itself), and the worker then proves it with a ``SELECT`` of its
  database and an ``ECHO`` of a random token, whose replies must be the very next bytes;
  anything else and the relay is closed, never reused;
* a relay whose engine failed, was killed, or was stopped is closed at once (a blocking
  command may still be pending on its connection), and its connection is killed in Redis
  (``CLIENT KILL ID``): commands the engine wrote that socat or the kernel still held are
  dropped, never run later, so once the region's engine is dead and its relay released,
  nothing it sent can change Redis any more (the region's end relies on it: worker/region.py);
* an idle relay is closed after ``PSTACK_RELAY_IDLE`` seconds (0: a new relay for every
  region), and dies with the worker process that keeps it: socat sees end-of-file on its
  input when no one holds the pipe any more.
"""
from __future__ import annotations

import logging
import os
import select
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

from pstack_tasks.config import settings
from pstack_tasks.exceptions import ConfigurationError, RedisUnavailable
from pstack_tasks.native.procs import kill_group, start_in_own_group

logger = logging.getLogger(__name__)

@dataclass
class RedisTarget:
    """Where a relay connects, from a ``redis://[user:password@]host:port/db`` URL."""

    host: str
    port: int
    db: int = 0
    username: str | None = None
    password: str | None = None
    url: str = ""

    @classmethod
    def parse(cls, url: str) -> RedisTarget:
        u = urlparse(url)
        if u.scheme not in ("redis", ""):
            raise ConfigurationError(f"unsupported Redis URL {url!r}: only redis://host:port/db is supported")
        try:
            db = int((u.path or "/0").lstrip("/") or 0)
        except ValueError:
            raise ConfigurationError(f"Redis URL {url!r}: the database must be a number") from None
        return cls(u.hostname or "127.0.0.1", u.port or 6379, db,
                   unquote(u.username) if u.username else None,
                   unquote(u.password) if u.password else None, url)

    def preamble(self) -> list[list[str]]:
        """Commands the connection needs before the engine's own: AUTH, SELECT."""
        cmds = []
        if self.password is not None:
            cmds.append(["AUTH", self.username, self.password] if self.username else ["AUTH", self.password])
        if self.db:
            cmds.append(["SELECT", str(self.db)])
        return cmds

    def client(self) -> Any:
        """A client for a local run's set-up and clean-up.  No retries: redis-py's default
        (three, with backoff) made an unreachable Redis take 5 s to report; a local run has
        nothing to wait for."""
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry
        return redis.Redis(host=self.host, port=self.port, db=self.db, username=self.username,
                           password=self.password, socket_timeout=30, socket_connect_timeout=5,
                           retry=Retry(NoBackoff(), 0))


def resp(args: list[str]) -> bytes:
    """One command in Redis's wire format (RESP)."""
    out = [f"*{len(args)}\r\n".encode()]
    for a in args:
        b = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class Relay:
    """One socat process joined to one Redis connection, and the two pipes an engine uses.

    ``command_fd`` is where an engine writes commands (``--command-fd``); ``reply_fd`` is the
    engine's stdin.  The first engine skips the replies to the preamble (``take_skip``).
    """

    def __init__(self, target: RedisTarget, identify: bool = False) -> None:
        socat = shutil.which("socat")
        if socat is None:
            raise RedisUnavailable("socat is not installed (apt-get install socat); it relays engine messages to Redis")
        self.key = target.url
        self.db = target.db
        self.target = target
        #: the connection's ``CLIENT ID`` in Redis (``identify``), for :meth:`sever`
        self.client_id: int | None = None
        to_redis_r, self.command_fd = os.pipe()   # engine -> socat stdin
        self.reply_fd, from_redis_w = os.pipe()   # socat stdout -> engine stdin
        try:
            pre = target.preamble() + ([["CLIENT", "ID"]] if identify else [])
            if pre:
                os.write(self.command_fd, b"".join(resp(c) for c in pre))
            self._skip = len(pre)
            # socat follows its users: it exits when nobody holds the other end of its input any more.
            self.proc = start_in_own_group([socat, "-b", "262144", "-", f"TCP:{target.host}:{target.port},nodelay"],
                                           to_redis_r, from_redis_w, subprocess.DEVNULL)
        except BaseException:
            os.close(self.command_fd)
            os.close(self.reply_fd)
            raise
        finally:
            os.close(to_redis_r)
            os.close(from_redis_w)
        self.idle_since = 0.0
        self.uses = 0
        if identify:
            self._introduce(pre)

    def _introduce(self, sent: list[list[str]], timeout: float = 10.0) -> None:
        """Read the replies to the preamble and ``CLIENT ID`` here, before any engine (which then
        skips none): the id names this connection to :meth:`sever`.  A Redis user that may not
        ask it (an ACL without ``client|id``) leaves the id unknown."""
        where = f"{self.target.host}:{self.target.port}"
        try:
            lines = _read_lines(self.reply_fd, len(sent), timeout)
        except OSError as e:
            self.close()
            raise RedisUnavailable(f"the engine relay could not reach Redis at {where}: {e}") from None
        for cmd, line in zip(sent, lines):
            if line.startswith("-") and cmd[0] != "CLIENT":
                self.close()
                raise RedisUnavailable(f"Redis at {where} refused the engine relay's {cmd[0]}: {line[1:]}")
        if lines[-1].startswith(":"):
            self.client_id = int(lines[-1][1:])
        else:
            logger.debug("Redis at %s refused CLIENT ID (%s): relays are closed without CLIENT KILL", where, lines[-1])
        self._skip = 0

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def take_skip(self) -> int:
        """How many replies the next engine must skip (the preamble's, for the first one only)."""
        skip, self._skip = self._skip, 0
        return skip

    def in_step(self, timeout: float = 2.0) -> bool:
        """True if nothing is owed on the connection: a SELECT of our database and an ECHO come
        back as the very next bytes (the SELECT undoes one an engine's handler may have sent)."""
        if self._skip or not self.alive():
            return False
        token = os.urandom(8).hex().encode()
        echoed = b"$%d\r\n%s\r\n" % (len(token), token)
        expect = b"+OK\r\n" + echoed
        try:
            os.write(self.command_fd, resp(["SELECT", str(self.db)]) + b"*2\r\n$4\r\nECHO\r\n" + echoed)
        except OSError:
            return False
        got = b""
        deadline = time.monotonic() + timeout
        while len(got) < len(expect):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.reply_fd], [], [], left)[0]:
                return False
            chunk = os.read(self.reply_fd, len(expect) - len(got))  # never more than the echo
            if not chunk:
                return False
            got += chunk
            if not expect.startswith(got):
                return False
        return True

    def finish(self, timeout: float = 2.0) -> None:
        """Close our ends and let socat deliver what is left (a stop for the peers, say), then go.

        Killing it while replies sit unread resets the connection, and commands Redis has not
        read yet would be lost.
        """
        self._close_fds()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            logger.warning("the socat relay did not exit %.1f s after its engine; killing it", timeout)
        self.close()

    def close(self) -> None:
        """Kill socat (its connection, and anything pending on it, goes with it)."""
        kill_group(self.proc)
        self._close_fds()

    def sever(self) -> None:
        """Close, and kill the connection in Redis too: whatever this relay carried that Redis has
        not run yet (bytes in socat or in a socket buffer when its engine died) is dropped.

        Redis runs one command at a time, so once ``CLIENT KILL ID`` has returned, every command
        of this connection has either run already or never will.  Without the id (see
        :meth:`_introduce`) this is :meth:`close`: commands still on the way may run a moment later.
        """
        self.close()
        if self.client_id is None:
            return
        try:
            _admin(self.target).execute_command("CLIENT", "KILL", "ID", str(self.client_id))
        except Exception as e:  # Redis gone or the command refused: nothing more can be done here
            logger.warning("could not kill the engine relay's Redis connection %s: %s", self.client_id, e)

    def _close_fds(self) -> None:
        for name in ("command_fd", "reply_fd"):
            fd = getattr(self, name)
            if fd >= 0:
                os.close(fd)
                setattr(self, name, -1)


def _read_lines(fd: int, count: int, timeout: float) -> list[str]:
    """``count`` one-line replies (``+OK``, ``:12``, ``-ERR ...``) from ``fd``; OSError on end of file
    (socat could not connect) or after ``timeout`` seconds."""
    got = b""
    deadline = time.monotonic() + timeout
    while got.count(b"\r\n") < count:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise OSError(f"no reply within {timeout:g} s")
        chunk = os.read(fd, 4096)
        if not chunk:
            raise OSError("the connection was refused or closed")
        got += chunk
    return [line.decode(errors="replace") for line in got.split(b"\r\n")[:count]]


#: one client per Redis URL for :meth:`Relay.sever` (made on first use; redis-py reconnects after a fork)
_admins: dict[str, Any] = {}


def _admin(target: RedisTarget) -> Any:
    client = _admins.get(target.url)
    if client is None:
        client = _admins[target.url] = target.client()
    return client


class RelayPool:
    """The idle relays of this process, by Redis URL; closed after ``idle`` seconds unused."""

    def __init__(self) -> None:
        self._idle: dict[str, list[Relay]] = {}
        self._lock = threading.Lock()
        self._reaper: threading.Thread | None = None
        # A forked child must not use (or reap) its parent's relays: it starts empty.
        os.register_at_fork(after_in_child=self._forget)

    def acquire(self, target: RedisTarget) -> Relay:
        """An idle relay to this Redis that is still up, else a new one."""
        with self._lock:
            idle = self._idle.get(target.url, [])
            while idle:
                relay = idle.pop()
                if relay.alive():
                    relay.uses += 1
                    return relay
                relay.close()
        return Relay(target, identify=True)

    def release(self, relay: Relay, clean: bool) -> None:
        """Keep a relay whose engine ended cleanly and that is in step; close any other, and sever
        one whose engine did not end cleanly or that is out of step (commands may be pending).

        An engine that ended cleanly has read every reply it was owed, so everything it sent
        has run: its relay is closed (or kept) without a ``CLIENT KILL``.
        """
        keep = settings().relay_idle
        if not clean:
            relay.sever()
            return
        if keep <= 0:
            relay.close()
            return
        if not relay.in_step():
            relay.sever()
            return
        relay.idle_since = time.monotonic()
        with self._lock:
            self._idle.setdefault(relay.key, []).append(relay)
            if self._reaper is None:
                self._reaper = threading.Thread(target=self._reap, name="relay-reaper", daemon=True)
                self._reaper.start()

    def idle_pids(self) -> list[int]:
        with self._lock:
            return [r.pid for relays in self._idle.values() for r in relays]

    def close_all(self) -> None:
        with self._lock:
            relays = [r for rs in self._idle.values() for r in rs]
            self._idle.clear()
        for r in relays:
            r.close()

    def _reap(self) -> None:
        while True:
            keep = settings().relay_idle
            time.sleep(min(max(keep / 4, 0.05), 1.0))
            now = time.monotonic()
            with self._lock:
                old = [r for rs in self._idle.values() for r in rs if now - r.idle_since >= keep or not r.alive()]
                for rs in self._idle.values():
                    rs[:] = [r for r in rs if r not in old]
            for r in old:
                r.close()

    def _forget(self) -> None:
        self._idle = {}
        self._lock = threading.Lock()
        self._reaper = None


#: this process's idle relays (a prefork worker's pool process keeps its own)
pool = RelayPool()
