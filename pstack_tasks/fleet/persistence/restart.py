"""``restart(pid)``: an ended process resumed from one of its checkpoints, as the same pid.

The process is queued again (gang admission as at submission) with its record saying which
checkpoint to resume from (``resume_from``); each region's worker fetches it and starts its engine
with ``--resume`` (worker/resume.py).  The region map may differ from the one the checkpoint was
taken with (migration): the engines place every device's state and every in-flight message by
the old map, whatever the new one.
"""
from __future__ import annotations

import json
import time
from typing import Any

from pstack_tasks.config import settings
from pstack_tasks.exceptions import ProcessError
from pstack_tasks.fleet import store
from pstack_tasks.fleet.keys import Keys
from pstack_tasks.fleet.persistence.checkpoints import find
from pstack_tasks.fleet.records import ENDED, not_found
from pstack_tasks.fleet.served import Rcon
from pstack_tasks.fleet.submission import _queue, parsed
from pstack_tasks.native.split_cache import RegionMap, resolve, split_digest

#: record fields of the run before, dropped when the process is queued again
_STALE_FIELDS = ("ended", "started", "reason", "killed_by", "error", "partition")


def restart(pid: int, checkpoint: int | None = None, rmap: RegionMap = None, rcon: Rcon | None = None) -> int:
    """Queue ended process ``pid`` again, resuming from checkpoint ``checkpoint`` (None: its last),
    on region map ``rmap`` (None: the one it ran with) with regions pinned by ``rcon``.

    Raises:
        ProcessNotFound: no such process.
        ProcessError: it still runs or waits, it has no such checkpoint, or ``rcon`` names a
            Python engine (client-served regions cannot resume).
        ProcessRefused: the fleet can never run it now.

    Returns its pid (``pstack_tasks.restart`` returns a Future of it).
    """
    with store.reporting():
        r, keys = store.client(), Keys.current()
        rec = store.text_hash(r.hgetall(keys.proc(pid)))
        if not rec:
            raise not_found(pid)
        if rec.get("state") not in ENDED:
            raise ProcessError(f"process {pid} is {rec.get('state')}: only an ended process can be restarted "
                               "(kill it first)")
        entry = find(pid, checkpoint)
        record, regions = new_record(r, keys, pid, rec, entry, rmap, rcon)
        await_regions_ended(r, keys, pid, [int(x) for x in json.loads(rec.get("regions") or "[]")])
        requeue(r, keys, pid, rec, record, regions)
    return pid


def await_regions_ended(r: Any, keys: Keys, pid: int, regions: list[int]) -> None:
    """Wait until every region of the run before has ended: its heartbeat key is gone (deleted
    by its end, or expired with its lost worker), at most PSTACK_HEARTBEAT_TTL + 2 s.  A region
    still stopping after a kill would otherwise end inside the new run, counted as one of its
    regions (the new run then ends without its own part of the result)."""
    deadline = time.monotonic() + settings().heartbeat_ttl + 2
    while True:
        pipe = r.pipeline(transaction=False)
        for x in regions:
            pipe.exists(keys.beat(pid, x))
        alive = [x for x, there in zip(regions, pipe.execute()) if there]
        if not alive:
            return
        if time.monotonic() > deadline:
            raise ProcessError(f"process {pid}: region(s) {', '.join(map(str, alive))} of its last run are still "
                               "stopping; restart it again in a moment")
        time.sleep(0.05)


def requeue(r: Any, keys: Keys, pid: int, rec: dict[str, str], record: dict[str, object], regions: list[int]) -> None:
    """The run before forgotten (its result, counters, leases, wake-ups), the record updated and
    the process queued for slots again."""
    pipe = r.pipeline(transaction=True)
    for k in (keys.result(pid), keys.ended(pid), keys.exits(pid), keys.started(pid), keys.progress(pid),
              keys.usage(pid), keys.abort(pid), keys.lease(pid), keys.wake(pid)):
        pipe.delete(k)
    pipe.hdel(keys.proc(pid), *_STALE_FIELDS)
    pipe.persist(keys.proc(pid))
    pipe.execute()
    _queue(pid, rec["engine"], record, regions)


def new_record(r: Any, keys: Keys, pid: int, rec: dict[str, str], entry: dict[str, Any], rmap: RegionMap,
                rcon: Rcon | None) -> tuple[dict[str, object], list[int]]:
    text = store.text(r.get(keys.app(rec["app"])))
    if text is None:
        raise ProcessError(f"the application of process {pid} has expired from Redis: it cannot be restarted")
    app = parsed(text, None, rec["app"])
    if rmap is None:
        rmap = json.loads(rec.get("rmap") or "{}") or None
    arr, regions, split = resolve(app, rmap)
    pins = {str(k): v for k, v in (rcon or {}).items()}
    for k, v in pins.items():
        if not isinstance(v, str):
            raise ProcessError(f"restart of process {pid}: rcon region {k} names a Python engine; restarted "
                               "regions run on the fleet (pin them to hosts by name)")
        if not k.isdigit() or int(k) not in regions:
            raise ProcessError(f"rcon pins region {k!r}, but the regions in use are {regions}")
    options = dict(json.loads(rec.get("options") or "{}"))
    options.pop("split_digest", None)
    if split is not None:
        options["split_digest"] = split_digest(arr)
    record: dict[str, object] = {
        "regions": json.dumps(regions), "nregions": len(regions), "client_regions": "[]",
        "rmap": json.dumps(rmap if isinstance(rmap, str) else dict(rmap or {})), "rcon": json.dumps(pins),
        "options": json.dumps(options), "state": "Submitted", "hosts": "{}", "resume_from": entry["id"],
        "restarts": int(rec.get("restarts") or 0) + 1, "restarted": f"{time.time():.3f}",
    }
    if split is not None:
        record["partition"] = json.dumps(split.as_dict())
    return record, regions


__all__ = ["restart", "requeue", "new_record", "await_regions_ended"]
