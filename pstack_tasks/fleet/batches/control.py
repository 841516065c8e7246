"""Waiting for a batch and killing it.

Waiting reads the batch again and again (:func:`outcomes.view`) until every run is over;
killing stops the batch's submission if it is still going, kills its running processes and
drops its waiting ones (each through :func:`~pstack_tasks.fleet.client.kill`, with the same
rights: the batch's owner or an admin).
"""
from __future__ import annotations

import time
from collections.abc import Callable

from pstack_tasks.exceptions import PermissionDenied, ProcessNotFound
from pstack_tasks.fleet import client, store
from pstack_tasks.fleet.batches import outcomes, record
from pstack_tasks.fleet.batches.outcomes import BatchView
from pstack_tasks.fleet.keys import Keys
from pstack_tasks.fleet.users import current_user, is_admin

Watcher = Callable[[BatchView], None]
#: seconds between two reads of a batch while waiting
POLL_SECONDS = 0.5


def wait(batch_id: int, timeout: float | None = None, progress: Watcher | None = None) -> BatchView:
    """Wait until every run of the batch is over; the batch as it ended.

    ``progress`` receives the batch's view after each read (about twice a second).

    Raises:
        BatchNotFound: no such batch.
        TimeoutError: ``timeout`` seconds passed first (the batch goes on).
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        current = outcomes.view(batch_id)
        if progress is not None:
            progress(current)
        if current.ended:
            return current
        if deadline is not None and time.monotonic() >= deadline:
            done = sum(1 for run in current.runs if run.state in outcomes.OVER)
            raise TimeoutError(f"batch {batch_id} is still {current.state} after {timeout:g} s "
                               f"({done} of {current.total} runs over)")
        _until_next_end(current)


def _until_next_end(current: BatchView) -> None:
    """Sleep until the last run still going ends, or :data:`POLL_SECONDS` (a process's end pushes
    to its wake list, which waiters watch without taking)."""
    going = [run.pid for run in current.runs if run.pid is not None and run.state not in outcomes.OVER]
    if not going:
        time.sleep(POLL_SECONDS)  # runs not yet submitted: nothing to watch
        return
    r, keys = store.client(), Keys.current()
    wake = keys.wake(going[-1])
    r.blmove(wake, wake, POLL_SECONDS, "LEFT", "LEFT")  # type: ignore[arg-type]  # Redis takes fractions


def kill(batch_id: int, wait_seconds: float = 30.0) -> BatchView:
    """Kill a batch: no more of its runs are submitted, running ones are killed, waiting ones are
    dropped.  Returns the batch once every run is over (or ``wait_seconds`` have passed).

    Raises:
        BatchNotFound: no such batch.
        PermissionDenied: the batch belongs to another user and the caller is no admin.
    """
    who = current_user()
    with store.reporting():
        rec = record.read(batch_id)
        owner = rec.get("user") or ""
        if who != owner and not is_admin(who):
            raise PermissionDenied(f"batch {batch_id} belongs to {owner or 'nobody'}; only {owner or 'its owner'} "
                                   f"or an admin (PSTACK_ADMINS) can kill it, and you are {who}")
    first = outcomes.view(batch_id)
    if first.ended:
        return first  # an ended batch stays as it ended
    if not rec.get("killed_by"):
        with store.reporting():
            record.note(batch_id, killed_by=who)
    asked: set[int] = set()
    deadline = time.monotonic() + wait_seconds
    while True:  # again until all is over: a run its submitter queued just before the kill is caught too
        current = outcomes.view(batch_id)
        for run in current.runs:
            if run.pid is not None and run.pid not in asked and run.state not in outcomes.OVER:
                asked.add(run.pid)
                try:
                    client.kill(run.pid, wait=0)  # waiting ones end at once; running ones stop by themselves
                except ProcessNotFound:
                    pass  # expired meanwhile: nothing to stop
        if current.ended or time.monotonic() >= deadline:
            return current
        time.sleep(0.1)


__all__ = ["wait", "kill", "POLL_SECONDS"]
