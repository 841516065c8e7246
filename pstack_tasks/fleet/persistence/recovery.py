"""Automatic recovery: a process with checkpoints that loses a worker resumes from its last one.

When the fleet would end such a process Failed because a region's worker died (its heartbeat
expired, or its worker process went away), it goes ``Recovering`` instead: its slots and engine
keys are freed as at any ending (the ledger's ``end`` script, with that state), the recovery is
recorded (``recoveries:<pid>``: when, why, which checkpoint), and the process is queued again
resuming from its last checkpoint, on the same region map (gang admission as usual: it waits for
enough slots).  ``ps``/``status`` show it ``Recovering`` until it runs.  At most
PSTACK_MAX_RECOVERIES times; any other cause (a handler crash, a limit, a kill) still fails it.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any

from pstack_tasks.config import settings
from pstack_tasks.exceptions import PstackError
from pstack_tasks.fleet import store
from pstack_tasks.fleet.causes import is_worker_loss
from pstack_tasks.fleet.dispatch import ledger, start
from pstack_tasks.fleet.keys import Keys
from pstack_tasks.fleet.persistence.checkpoints import checkpoints
from pstack_tasks.fleet.persistence.restart import new_record, requeue
from pstack_tasks.fleet.records import recovery_notes

logger = logging.getLogger(__name__)

def recover(pid: int, reason: str) -> bool:
    """Resume ``pid`` from its last checkpoint instead of ending it Failed for ``reason``, if it
    has one, lost a worker (its first cause is coded ``WorkerLost``: fleet/causes.py), and has
    recoveries left.  True if it is recovering."""
    r, keys = store.client(), Keys.current()
    rec = store.text_hash(r.hgetall(keys.proc(pid)))
    if not rec or rec.get("killed_by"):
        return False
    if rec.get("state") == "Recovering" or rec.get("recovering") and rec.get("state") in ("Submitted", "Waiting"):
        return True  # another reaper got there first
    if rec.get("state") != "Running" or not is_worker_loss(rec):
        return False
    entries = checkpoints(pid)
    done = int(r.llen(keys.recoveries(pid)))
    if not entries or done >= settings().max_recoveries:
        return False
    if not r.hsetnx(keys.proc(pid), f"recovery:{done + 1}", reason):
        return True  # claimed by another reaper (the control worker and a blocking client both reap)
    entry = entries[-1]
    try:
        record, regions = new_record(r, keys, pid, rec, entry, json.loads(rec.get("rmap") or "{}") or None,
                                     json.loads(rec.get("rcon") or "{}"))
    except PstackError as e:
        logger.warning("process %s cannot recover: %s", pid, e)
        return False
    ending = ledger().end(pid, "Recovering", reason)
    if ending is None or not ending.ended:
        return False
    start(ending.engine, ending.admitted)
    note: dict[str, Any] = {"time": round(time.time(), 3), "reason": reason, "checkpoint": entry["id"]}
    r.rpush(keys.recoveries(pid), json.dumps(note))
    r.expire(keys.recoveries(pid), settings().result_expires)
    record.update(recovering=1, recoveries=done + 1, restarts=int(rec.get("restarts") or 0))
    logger.info("process %s recovering from checkpoint %s (recovery %d): %s", pid, entry["id"], done + 1, reason)
    requeue(r, keys, pid, rec, record, regions)
    return True


def recoveries(pid: int) -> list[dict[str, Any]]:
    """Each automatic recovery of ``pid``: ``{"time", "reason", "checkpoint"}``, oldest first."""
    with store.reporting():
        return recovery_notes(store.client().lrange(Keys.current().recoveries(pid), 0, -1))


__all__ = ["recover", "recoveries"]
