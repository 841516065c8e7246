"""A small bounded memory for per-process caches (parsed applications, prepared engines, paths).

Clients and worker processes run one application again and again; what they derive from its
content hash is kept, but only the most recently used few, so a long-lived process running
many applications does not grow without bound.  cachetools keeps the order; this adds the
lock (a threads pool, the control worker, submits concurrently) and a ``get`` that says None.
"""
from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import Generic, TypeVar

from cachetools import LRUCache

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """The ``entries`` most recently used values by key (least recently used dropped first)."""

    def __init__(self, entries: int) -> None:
        self.entries = entries
        self._items: LRUCache[K, V] = LRUCache(maxsize=entries)
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            return self._items.get(key)

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = value
