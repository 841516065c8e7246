"""The Celery tasks: one per region of a process (the last region to end ends it Done), and the
chord callback that ended it Done when older versions sent a process's regions as a chord.

Both are thin: the work is in :mod:`region` and :mod:`pstack_tasks.fleet.lifecycle`, which
tests and the embedded stack can reason about without Celery.  Region tasks are never retried
on their own (a region cannot rejoin a running gang); a lost region fails its process instead.
A region stores its states in Redis itself and returns only its metrics (Flower shows them).
While a region runs, its counters are published for Flower (:mod:`task_progress`).
The tasks for clients that speak only Celery (Flower's HTTP API) are in :mod:`flower_tasks`.
"""
from __future__ import annotations

from typing import Any

from pstack_tasks.celery_app import app
from pstack_tasks.fleet.lifecycle import finish_done
from pstack_tasks.worker.region import run_region
from pstack_tasks.worker.task_progress import RegionProgress


@app.task(name="pstack.region", bind=True, acks_late=False, max_retries=0,  # type: ignore[untyped-decorator]
          track_started=False)
def region(self: Any, pid: int, region_no: int, run: int | None = None, engine: str | None = None) -> dict[str, Any]:
    """Run region ``region_no`` of run ``run`` of process ``pid`` on this worker (``engine``: its
    engine type); its region, host and metrics.  A task of another run than the process's (one
    still queued when its process was restarted or recovered) does not take part.  Tasks sent by
    a version before runs carry neither (None: any run).

    No STARTED state in the result backend (``track_started`` is on for the other tasks): a
    region's backend state is PROGRESS from its first report on, Flower learns that it started
    from the worker's task-started event, and the write cost as much as a tenth of a small
    region's Python (bench/README.md, "Issue 17, session 3")."""
    node = self.request.hostname or ""
    host = node.split("@", 1)[-1]
    progress = RegionProgress(self, pid, region_no)
    try:
        return run_region(pid, region_no, host, on_progress=progress.report, run=run, engine=engine)
    finally:
        progress.close()


@app.task(name="pstack.merge")  # type: ignore[untyped-decorator]
def merge(parts: list[dict[str, Any]], pid: int) -> None:
    """Chord callback of processes dispatched by a version before issue 17 (a message may still
    be queued after an upgrade): every region has stored its part; the process is Done.  Processes
    dispatched now have no chord: their last region ends them (region.py)."""
    finish_done(pid, parts)


@app.task(name="pstack.noop")  # type: ignore[untyped-decorator]
def noop(*args: Any) -> None:
    """Does nothing: bench/processes_bench.py measures Celery's own floor (a chord of these)."""
