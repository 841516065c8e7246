"""A small bounded memory for per-process caches (parsed applications, prepared engines, paths).

Clients and worker processes run one application again and again; what they derive from its
content hash is kept, but only the most recently used few, so a long-lived process running
many applications does not grow without bound.  An OrderedDict keeps the order (cachetools
did, at several milliseconds of import on every psim start); the lock is for a threads pool,
the control worker, submitting concurrently.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """The ``entries`` most recently used values by key (least recently used dropped first)."""

    def __init__(self, entries: int) -> None:
        self.entries = entries
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.entries:
                self._items.popitem(last=False)
