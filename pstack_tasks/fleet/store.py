"""The stack's Redis connection: one shared client per URL, reachability checks, and redis-py's
errors turned into project errors that say what to fix.  Key names are in :mod:`keys`.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast
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


def text_hash(reply: object) -> dict[str, str]:
    """A hash as :func:`client` answers it: text (``decode_responses``), which redis-py's types
    cannot know."""
    return cast("dict[str, str]", reply)


def text(reply: object) -> str | None:
    """A string reply as :func:`client` answers it (None for a missing key)."""
    return cast("str | None", reply)


def reset_clients() -> None:
    """Forget the pooled clients (after a fork, or when a test changes servers)."""
    with _lock:
        for c in _clients.values():
            c.close()
        _clients.clear()
