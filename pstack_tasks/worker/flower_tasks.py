"""Tasks for clients that speak only Celery: start a process and read its result (Flower's HTTP API).

``pstack.submit`` creates a process exactly as :func:`pstack_tasks.fleet.client.submit` does
and returns its pid; ``pstack.result`` returns a process's record and, once it is Done, its
merged result.  Both run on the control queue, and neither ever blocks a control worker:
the merge callbacks and the reaper run on the same small pool, and a task that waited there
for a process could starve the very merge it waits for (with four waiters on a pool of four,
no process would ever end).  So:

* ``pstack.submit`` returns as soon as the process is queued (a waiting process starts by
  itself when slots free up);
* ``pstack.result`` answers at once; with ``wait=S`` it re-queues itself (a Celery retry
  with a countdown) once a second until the process has ended or ``S`` seconds have passed.
  A retry waiting for its countdown is held by the worker's timer, not by a pool thread, so
  waiters never hold a slot.  The blocking happens in the client: Flower's
  ``GET /api/task/result/<id>?timeout=T`` waits for the task's final state in Flower itself.

``pstack.batch`` starts a batch the same way (:func:`pstack_tasks.fleet.batches.batch`, not
waiting) and returns its id; ``pstack.batch_summary`` answers with the batch's summary and rows,
waiting as ``pstack.result`` does.

docs/flower.md and docs/batches.md show the curl commands.
"""
from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from celery import Task

from pstack_tasks.celery_app import app
from pstack_tasks.exceptions import ConfigurationError
from pstack_tasks.fleet.batches import batch as start_batch
from pstack_tasks.fleet.batches import outcomes, table
from pstack_tasks.fleet.client import submit as submit_process
from pstack_tasks.fleet.records import ENDED, read_result, status

logger = logging.getLogger(__name__)
POLL_SECONDS = 1.0
MAX_WAIT = 24 * 3600.0
_GRAPH_TYPE = re.compile(r"<GraphType\b[^>]*?\bid\s*=\s*[\"']([^\"']+)")


def describe_application(application: Any) -> str:
    """A short stand-in for the application argument: a path as it is, XML text by its graph type."""
    if not isinstance(application, str):
        return repr(application)
    if not application.lstrip().startswith("<"):
        return repr(application)
    m = _GRAPH_TYPE.search(application[:100000])
    kind = f"graph type {m.group(1)}" if m else "no GraphType found"
    return f"<XML text, {len(application)} characters, {kind}>"


class SubmitTask(Task):  # type: ignore[misc]
    """Sent with a short ``argsrepr``: Flower would otherwise show the whole XML text as its args."""

    def apply_async(self, args: Sequence[Any] | None = None, kwargs: Mapping[str, Any] | None = None,
                    **options: Any) -> Any:
        if args and "argsrepr" not in options:
            options["argsrepr"] = "(" + ", ".join([describe_application(args[0])] + [repr(a) for a in args[1:]]) + ")"
        if kwargs and "application" in kwargs and "kwargsrepr" not in options:
            shown = {k: (describe_application(v) if k == "application" else v) for k, v in kwargs.items()}
            options["kwargsrepr"] = repr(shown)
        return super().apply_async(args, kwargs, **options)


@app.task(name="pstack.submit", base=SubmitTask)  # type: ignore[untyped-decorator]
def submit(application: str, rmap: Mapping[str, int] | None = None, rcon: Mapping[int | str, str] | None = None,
           engine: str | None = None, options: Mapping[str, Any] | None = None, level: int = 1,
           group: str | None = None) -> dict[str, Any]:
    """Start a process; ``{"pid", "state"}`` at once (Waiting or Running).

    Args:
        application: the application's XML text, or the path of its file *on the control
            worker's host*.
        rmap, rcon, engine, options, level: as for :func:`pstack_tasks.fleet.client.submit`.
        group: the process's worker group (docs/fleet.md, "Worker groups"); None: the control
            worker's ``PSTACK_GROUP``, as for any submission from its host.

    Raises:
        GraphError: the application is malformed (file:line); nothing was queued.
        ProcessRefused: the fleet can never run it (the message gives the numbers).
        ConfigurationError: an unreadable file, an unknown engine type, a bad rcon.
        ProcessRefused: no worker serves ``group`` (nothing was queued).
    """
    if not isinstance(application, str) or not application.strip():
        raise ConfigurationError("pstack.submit needs the application: its XML text, or the path of its file "
                                 "on the control worker's host, as the first argument")
    future = submit_process(application, rmap=rmap, rcon=rcon, level=level, engine=engine, options=options,
                            group=group)
    state = future.state()
    logger.info("process %s submitted through the API: %s", future.pid, state)
    return {"pid": future.pid, "state": state}


@app.task(name="pstack.result", bind=True, max_retries=None)  # type: ignore[untyped-decorator]
def result(self: Any, pid: int, wait: float = 0.0) -> dict[str, Any]:
    """A process's record (as ``status``) plus ``result``: the merged result once it is Done.

    Args:
        pid: the process.
        wait: if it has not ended yet, look again every second for up to this many seconds
            before answering (without holding a worker thread meanwhile).

    Raises:
        ProcessNotFound: no such process (unknown, or its record has expired).
    """
    record = status(int(pid))
    polls = math.ceil(min(float(wait or 0), MAX_WAIT) / POLL_SECONDS)
    if record["state"] not in ENDED and self.request.retries < polls:
        raise self.retry(countdown=POLL_SECONDS, max_retries=None)
    record["result"] = read_result(int(pid)) if record["state"] == "Done" else None
    return record



@app.task(name="pstack.batch", base=SubmitTask)  # type: ignore[untyped-decorator]
def batch(application: str, grid: Mapping[str, Sequence[Any]] | None = None, runs: int = 1,
          seeds: Sequence[Any] | None = None, rmap: Mapping[str, int] | None = None, engine: str | None = None,
          group: str | None = None, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Start a batch; ``{"batch", "total", "state"}`` once every run is queued.

    Args:
        application: the XML text, or a path on the control worker's host (as ``pstack.submit``).
        grid, runs, seeds, rmap, engine, group, options: as for :func:`pstack_tasks.batch`.

    Raises:
        GraphError: the application is malformed, or a grid key or value does not apply; nothing
            was queued.
    """
    if not isinstance(application, str) or not application.strip():
        raise ConfigurationError("pstack.batch needs the application: its XML text, or the path of its file "
                                 "on the control worker's host, as the first argument")
    handle = start_batch(application, grid=grid, runs=int(runs), seeds=seeds, rmap=rmap, engine=engine, group=group,
                         options=options, wait=False)
    summary = handle.summary()
    logger.info("batch %s submitted through the API: %s runs", handle.id, summary["total"])
    return {"batch": handle.id, "total": summary["total"], "state": summary["state"]}


@app.task(name="pstack.batch_summary", bind=True, max_retries=None)  # type: ignore[untyped-decorator]
def batch_summary(self: Any, batch_id: int, wait: float = 0.0) -> dict[str, Any]:
    """A batch's summary (record, ``counts`` per state, ``state``) and ``rows``, one per run (the
    CSV's columns).  ``wait``: if it has not ended, look again every second for up to this many
    seconds first (without holding a worker thread, as ``pstack.result``).

    Raises:
        BatchNotFound: no such batch.
    """
    view = outcomes.view(int(batch_id))
    polls = math.ceil(min(float(wait or 0), MAX_WAIT) / POLL_SECONDS)
    if not view.ended and self.request.retries < polls:
        raise self.retry(countdown=POLL_SECONDS, max_retries=None)
    return dict(view.summary(), rows=table.rows(view))
