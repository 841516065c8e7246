"""A Redis client that answers bytes: dumps and checkpoints are binary (the stack's shared client
decodes every reply as text)."""
from __future__ import annotations

import threading

import redis

from pstack_tasks.fleet import store

_lock = threading.Lock()
_clients: dict[str, redis.Redis] = {}


def binary_client() -> redis.Redis:
    """A shared client of the stack's Redis whose replies are bytes."""
    url = store.redis_url()
    with _lock:
        c = _clients.get(url)
        if c is None:
            c = _clients[url] = redis.Redis.from_url(url, decode_responses=False, socket_timeout=60,
                                                     socket_connect_timeout=5)
    return c


__all__ = ["binary_client"]
