"""The Celery tasks: one per region of a process, and the chord callback that merges them.

Both are thin: the work is in :mod:`regions` and :mod:`process`, which tests and the
embedded stack can reason about without Celery.  Region tasks are never retried on their
own (a region cannot rejoin a running gang); a lost region fails its process instead.
While a region runs, its counters are published for Flower (:mod:`task_progress`).  The tasks
for clients that speak only Celery (Flower's HTTP API) are in :mod:`api`.
"""
from __future__ import annotations

from typing import Any

from pstack_tasks.celery_app import app
from pstack_tasks.fleet.process import merge_parts
from pstack_tasks.worker.region import run_region
from pstack_tasks.worker.task_progress import RegionProgress


@app.task(name="pstack.region", bind=True, acks_late=False, max_retries=0)
def region(self: Any, pid: int, region_no: int) -> dict[str, Any]:
    """Run region ``region_no`` of process ``pid`` on this worker; its states and metrics."""
    node = self.request.hostname or ""
    host = node.split("@", 1)[-1]
    progress = RegionProgress(self, pid, region_no)
    try:
        return run_region(pid, region_no, host, on_progress=progress.report)
    finally:
        progress.close()


@app.task(name="pstack.merge")
def merge(parts: list[dict[str, Any]], pid: int) -> None:
    """Chord callback: merge the regions' results into the process result; the process is Done."""
    merge_parts(pid, parts)


@app.task(name="pstack.noop")
def noop(*args: Any) -> None:
    """Does nothing: bench/processes_bench.py measures Celery's own floor (a chord of these)."""
