"""Live progress of a running region task, where Flower and Celery clients can see it (events, backend).

Flower builds its task list and task page from *events*, not from the result backend, so
progress goes out two ways:

* a custom ``task-progress`` event.  Flower shows an unknown event type as the task's state
  (``PROGRESS``) and displays only the standard task fields, so the human-readable counters
  go in the ``result`` field ("delivered 1200 messages, step 300", and for a region of a
  process that recovered from a lost worker ", after recovery 1"); ``delivered``, ``steps``
  and ``recoveries`` ride along for other event consumers (``celery events``).
* ``PROGRESS`` with ``{"delivered", "steps", "pid", "region", "recoveries"}`` in the result
  backend, for ``AsyncResult(id).info`` (Flower's ``/api/task/result`` shows only the state
  until the task ends).

The region's guard thread calls :meth:`RegionProgress.report`, not the task's own thread:
``Task.request`` is thread-local (empty in the guard thread), so everything the reports
need is captured from the request when the task starts.  Reports are throttled so that a
large fleet does not flood Flower, and never raise: a monitoring hiccup must not stop a
region (the guard logs what this lets through).
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

from pstack_tasks.fleet import store
from pstack_tasks.fleet.keys import Keys

logger = logging.getLogger(__name__)
PROGRESS = "PROGRESS"
EVENT = "task-progress"
MIN_INTERVAL = 0.5  # seconds between two reports of one region


def describe(delivered: int, steps: int, recoveries: int = 0) -> str:
    """The counters as Flower's Result column shows them, and how many times the process has
    recovered from a lost worker (docs/persistence.md) if it has."""
    text = f"delivered {delivered} messages, step {steps}"
    return f"{text}, after recovery {recoveries}" if recoveries else text


class RegionProgress:
    """Publishes one region task's counters as Celery events and backend state.

    Args:
        task: the bound region task (its app, backend and event dispatcher are used).
        pid: the process; region: the region number (carried in the backend meta).
        min_interval: at most one report per this many seconds (the first always goes).
    """

    def __init__(self, task: Any, pid: int, region: int, min_interval: float = MIN_INTERVAL) -> None:
        request = task.request
        self.task_id: str = request.id
        self.hostname: str | None = request.hostname
        self.request = request  # the extended result meta (name, args, worker) comes from it
        self.app = task.app
        self.backend = task.backend  # resolved here: app.backend is per thread
        self.pid, self.region = pid, region
        self.min_interval = min_interval
        self._last = float("-inf")
        self._lock = threading.Lock()
        self._closed = False
        self.sent = 0
        self.recoveries: int | None = None  # read from the process record at the first report

    def report(self, delivered: int, steps: int) -> bool:
        """Publish the counters unless the last report was too recent; True if sent."""
        now = time.monotonic()
        with self._lock:
            if self._closed or now - self._last < self.min_interval:
                return False
            self._last = now
            self._send(int(delivered), int(steps))
            self.sent += 1
        return True

    def close(self) -> None:
        """No more reports: the task's final state must not be overwritten by a late one.

        Waits for a report in flight (the guard thread may still be in one if it outlived
        its join).
        """
        with self._lock:
            self._closed = True

    def _recoveries(self) -> int:
        """How many times the process recovered before this run: read once (a region runs
        within one recovery), from the record recovery.py counts them in."""
        if self.recoveries is None:
            self.recoveries = int(store.client().hget(Keys.current().proc(self.pid), "recoveries") or 0)
        return self.recoveries

    def _send(self, delivered: int, steps: int) -> None:
        # No field may be called pid, hostname, clock, type, timestamp or utcoffset: the event
        # dispatcher sets those itself and a duplicate raises TypeError.
        recoveries = self._recoveries()
        with self.app.events.default_dispatcher(hostname=self.hostname) as dispatcher:
            dispatcher.send(EVENT, uuid=self.task_id, result=describe(delivered, steps, recoveries),
                            delivered=delivered, steps=steps, recoveries=recoveries)
        meta = {"pid": self.pid, "region": self.region, "delivered": delivered, "steps": steps,
                "recoveries": recoveries}
        self.backend.store_result(self.task_id, meta, PROGRESS, request=self.request)
