"""Where the stack keeps its state in Redis: one client per URL, and every key's name.

All keys start with ``PSTACK_KEY_PREFIX`` (default ``pstack:``), the broker's
queues included, so two stacks, or a test run and a developer's stack, can share
one Redis database without seeing each other.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlparse

import redis

from pstack_tasks.config import mask_url, settings
from pstack_tasks.exceptions import ConfigurationError, PermissionDenied, RedisUnavailable

_clients: dict[str, redis.Redis] = {}
_lock = threading.Lock()


def redis_url() -> str:
    """The stack's Redis URL; the fleet commands cannot guess it."""
    url = settings().redis_url
    if not url:
        raise ConfigurationError("PSTACK_REDIS_URL is not set: it names the Redis of the worker fleet "
                                 "(redis://host:port/db); `pstack run` without it runs on a private local stack")
    return url


def client(url: str | None = None) -> redis.Redis:
    """A shared client (thread-safe connection pool) answering text, with bounded waits.

    The socket timeout stays above every blocking call the stack makes (at most a few
    seconds), so a dead server is reported instead of waited on forever.
    """
    url = url or redis_url()
    with _lock:
        c = _clients.get(url)
        if c is None:
            c = redis.Redis.from_url(url, decode_responses=True, socket_timeout=30, socket_connect_timeout=5,
                                     health_check_interval=25)
            _clients[url] = c
    return c


def ping(url: str | None = None) -> None:
    """Fail with a clear error when Redis cannot be reached."""
    url = url or redis_url()
    with reporting(url):
        try:
            client(url).ping()
        except redis.ResponseError as e:  # LOADING, MISCONF, ...: up, but not usable
            raise RedisUnavailable(f"Redis at {mask_url(url)} cannot serve the stack: {e}") from None


@contextmanager
def reporting(url: str | None = None) -> Iterator[None]:
    """Turn redis-py's errors into project errors that say what to fix, and never show the password.

    A missing or wrong password surfaces deep inside redis-py (during its HELLO handshake),
    and an ACL user without the right to a command gets ``NoPermissionError``: the user
    needs to hear which setting to change, not a traceback.
    """
    try:
        yield
    except redis.AuthenticationError as e:
        where = url or settings().redis_url or "?"
        if urlparse(where).password is None:
            raise RedisUnavailable(f"Redis at {mask_url(where)} requires authentication: put the password (and "
                                   "ACL user) in PSTACK_REDIS_URL as redis://[user]:password@host:port/db") from None
        raise RedisUnavailable(f"Redis at {mask_url(where)} refused the credentials in PSTACK_REDIS_URL: {e}") from None
    except redis.exceptions.NoPermissionError as e:
        who = urlparse(url or settings().redis_url or "").username or "default"
        raise PermissionDenied(f"the Redis user {who!r} of PSTACK_REDIS_URL may not do this: {e} "
                               "(a read-only monitoring user can list processes, not change them)") from None
    except (redis.ConnectionError, redis.TimeoutError) as e:
        where = url or settings().redis_url or "?"
        raise RedisUnavailable(f"cannot reach Redis at {mask_url(where)}: {e}") from None


def reset_clients() -> None:
    """Forget the pooled clients (after a fork, or when a test changes servers)."""
    with _lock:
        for c in _clients.values():
            c.close()
        _clients.clear()


@dataclass(frozen=True)
class Keys:
    """The name of every key the stack uses, under one prefix."""

    prefix: str

    @classmethod
    def current(cls) -> Keys:
        return cls(settings().key_prefix)

    # processes
    @property
    def next_pid(self) -> str:
        return f"{self.prefix}next_pid"

    @property
    def procs(self) -> str:
        """Sorted set of every known pid (score: pid)."""
        return f"{self.prefix}procs"

    @property
    def running(self) -> str:
        """Set of the pids of running processes (the reaper's work list)."""
        return f"{self.prefix}running"

    def proc(self, pid: int | str) -> str:
        """Hash: the process record (user, graph, regions, state, times, reason, ...)."""
        return f"{self.prefix}proc:{pid}"

    def app(self, digest: str) -> str:
        """The application XML, stored once per content hash for workers on any host."""
        return f"{self.prefix}app:{digest}"

    def result(self, pid: int | str) -> str:
        return f"{self.prefix}result:{pid}"

    def wake(self, pid: int | str) -> str:
        """List that gets an item when the process ends: waiters block on it without taking it."""
        return f"{self.prefix}wake:{pid}"

    def log(self, pid: int | str) -> str:
        """Stream of verbose log lines from the regions."""
        return f"{self.prefix}log:{pid}"

    def progress(self, pid: int | str) -> str:
        """Live counters per region: field ``<region>`` = ``"<delivered> <steps>"``."""
        return f"{self.prefix}progress:{pid}"

    def abort(self, pid: int | str) -> str:
        """The first cause of a failure or kill: set once, read by every region."""
        return f"{self.prefix}abort:{pid}"

    def lease(self, pid: int | str) -> str:
        """Hash region -> ``host|epoch``: the slots the process holds."""
        return f"{self.prefix}lease:{pid}"

    def started(self, pid: int | str) -> str:
        return f"{self.prefix}started:{pid}"

    def ended(self, pid: int | str) -> str:
        return f"{self.prefix}ended:{pid}"

    def beat(self, pid: int | str, region: int | str) -> str:
        """A region's heartbeat: expires when the region stops refreshing it."""
        return f"{self.prefix}beat:{pid}:{region}"

    @property
    def queue_prefix(self) -> str:
        """Prefix of the engines' keys: message lists ``<pid>.<region>``, ``<pid>.idle``, ``<pid>.active``,
        ``<pid>.calls`` (docs/engine-protocol.md).  The ledger's scripts reset them when a process
        is admitted and delete them when it ends."""
        return f"{self.prefix}q:"

    # the fleet
    @property
    def engine_types(self) -> str:
        return f"{self.prefix}engines"

    def cap(self, engine: str) -> str:
        """Hash host -> slots of every registered worker of an engine type."""
        return f"{self.prefix}cap:{engine}"

    def used(self, engine: str) -> str:
        return f"{self.prefix}used:{engine}"

    def info(self, engine: str) -> str:
        """Hash host -> JSON description (node name, pid, started) for ``engines()``."""
        return f"{self.prefix}info:{engine}"

    def alive(self, engine: str, host: str) -> str:
        return f"{self.prefix}alive:{engine}@{host}"

    def epoch(self, engine: str, host: str) -> str:
        return f"{self.prefix}epoch:{engine}@{host}"

    def waiting(self, engine: str) -> str:
        """List of pids waiting for slots, first come first served."""
        return f"{self.prefix}waiting:{engine}"

