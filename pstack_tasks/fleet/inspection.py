"""Looking into a running process and feeding it: ``inspect(pid)`` and ``inject(pid, device, pin, **fields)``.

Both read the application the process runs from Redis (stored once per content hash at
submission) and resolve its region map as the engines did, so items are decoded with the graph
type's message layouts and an injected message goes exactly where the engine of its device
would have sent it.  Nothing here stops or slows the engines: ``inspect`` only reads (the
queues with ``LRANGE``, the live counters, the leases), and ``inject`` is one script call that
counts and pushes the item as a sending engine does (``fleet/lua/inject.lua``).
"""
from __future__ import annotations

import json
import time
from array import array
from typing import Any

import redis

from pstack_tasks.exceptions import ProcessError, ProcessNotFound
from pstack_tasks.fleet import scripts, store
from pstack_tasks.fleet.keys import Keys
from pstack_tasks.fleet.message_items import decode, encode, sender
from pstack_tasks.fleet.records import ENDED, not_found
from pstack_tasks.fleet.submission import parsed
from pstack_tasks.fleet.users import check_may_kill, current_user
from pstack_tasks.graph.application import EDGE_WORDS, Application
from pstack_tasks.native.items import unpack
from pstack_tasks.native.split_cache import resolve

#: seconds between the two reads of the live counters that tell a busy region from an idle one
#: (the workers publish them about every 0.25 s)
SAMPLE = 0.6


def _record(r: redis.Redis, keys: Keys, pid: int) -> dict[str, str]:
    rec = store.text_hash(r.hgetall(keys.proc(pid)))
    if not rec:
        raise not_found(pid)
    return rec


def _application(r: redis.Redis, keys: Keys, pid: int, rec: dict[str, str]) -> tuple[Application, array[int]]:
    """The process's application (parsed, kept for the next call) and each device's region."""
    text = store.text(r.get(keys.app(rec["app"])))
    if text is None:
        raise ProcessNotFound(f"the application of process {pid} has expired from Redis")
    app = parsed(text, None, rec["app"])
    rmap = json.loads(rec.get("rmap") or "{}")
    regions, _, _ = resolve(app, rmap or None)
    return app, regions


def inspect(pid: int, items: int = 5, sample: float = SAMPLE) -> dict[str, Any]:
    """Each region of a process as it is now: host, queue length, the first ``items`` items of its
    queue decoded, messages delivered so far and whether it is busy.

    A region is ``busy`` when its delivered or step counter moved during ``sample`` seconds,
    ``idle`` when it did not (waiting for messages, or inside one long handler), ``ended`` once it
    has given back its slot, ``starting`` before its engine began.

    Returns:
        ``{"pid", "state", "user", "graph_type", "regions": [{"region", "host", "status", "queue",
        "items", "delivered", "steps"}, ...]}``; an ended process has no queues (empty lists).

    Raises:
        ProcessNotFound: no such process (never was, or its record has expired).
    """
    with store.reporting():
        r, keys = store.client(), Keys.current()
        rec = _record(r, keys, pid)
        regions = [int(x) for x in json.loads(rec.get("regions", "[]"))]
        app = _application(r, keys, pid, rec)[0] if rec["state"] not in ENDED else None
        before = _progress(r, keys, pid)
        if rec["state"] == "Running" and sample > 0:
            time.sleep(sample)
        snap = _snapshot(r, keys, pid, regions, items)
    rows = []
    for region in regions:
        counts = snap["progress"].get(region, (0, 0))
        status = _status(region, rec["state"], snap, before.get(region), counts)
        decoded = [decode(app, item) for item in snap["items"][region]] if app is not None else []
        rows.append({"region": region, "host": snap["hosts"].get(region, ""), "status": status,
                     "queue": snap["lengths"][region], "items": decoded, "delivered": counts[0], "steps": counts[1]})
    return {"pid": pid, "state": rec["state"], "user": rec.get("user", ""), "graph_type": rec.get("graph_type", ""),
            "regions": rows}


def _progress(r: redis.Redis, keys: Keys, pid: int) -> dict[int, tuple[int, int]]:
    return _counts(store.text_hash(r.hgetall(keys.progress(pid))))


def _counts(raw: dict[str, str]) -> dict[int, tuple[int, int]]:
    out = {}
    for region, text in raw.items():
        delivered, _, steps = text.partition(" ")
        out[int(region)] = (int(delivered), int(steps or 0))
    return out


def _snapshot(r: redis.Redis, keys: Keys, pid: int, regions: list[int], items: int) -> dict[str, Any]:
    """Everything :func:`inspect` shows of the regions, read in one round trip."""
    q = keys.queues(pid)
    pipe = r.pipeline(transaction=False)
    for region in regions:
        pipe.llen(q.queue(region))
        pipe.lrange(q.queue(region), 0, items - 1) if items > 0 else pipe.lrange(q.queue(region), 1, 0)
    pipe.hgetall(keys.progress(pid))
    pipe.hgetall(keys.lease(pid))
    pipe.smembers(keys.started(pid))
    pipe.smembers(keys.ended(pid))
    pipe.hget(keys.proc(pid), "hosts")
    replies = pipe.execute()
    per = replies[:2 * len(regions)]
    progress, lease, started, ended, hosts_text = replies[2 * len(regions):]
    hosts = {int(k): str(v) for k, v in json.loads(hosts_text or "{}").items()}
    for k, v in store.text_hash(lease).items():
        hosts.setdefault(int(k), v.split("|")[0])
    return {
        "lengths": {reg: int(per[2 * i]) for i, reg in enumerate(regions)},
        "items": {reg: unpack(list(per[2 * i + 1]))[:max(items, 0)] for i, reg in enumerate(regions)},
        "progress": _counts(store.text_hash(progress)), "hosts": hosts,
        "started": {int(x) for x in started}, "ended": {int(x) for x in ended},
    }


def _status(region: int, state: str, snap: dict[str, Any], before: tuple[int, int] | None,
            now: tuple[int, int]) -> str:
    if state in ENDED or region in snap["ended"]:
        return "ended"
    if state != "Running" or region not in snap["started"]:
        return "starting" if state == "Running" else state.lower()
    return "busy" if before is not None and before != now or before is None and now != (0, 0) else "idle"


def inject(pid: int, device: str, pin: str, **fields: Any) -> dict[str, Any]:
    """Send a message from ``device`` on its output pin ``pin`` into a running process, as if the
    device had sent it: one item to each region that holds a destination of that pin, counted by
    the distributed termination (the process cannot end while it waits in a queue).

    ``fields`` set the message's members over its type's defaults.

    Returns:
        ``{"pid", "item", "regions"}``: the item pushed and the regions it went to.

    Raises:
        ProcessNotFound: no such process.
        PermissionDenied: the process belongs to another user and the caller is no admin.
        ConfigurationError: no such device or pin, an unknown field or a value that does not fit.
        ProcessError: the process is not running (waiting for slots, or over), or the pin is indexed.
    """
    with store.reporting():
        r, keys = store.client(), Keys.current()
        rec = _record(r, keys, pid)
        check_may_kill(pid, rec, current_user(), action="inject into it")
        if rec["state"] != "Running":
            raise ProcessError(f"process {pid} is {rec['state']}: messages can be injected only while it runs")
        app, regions = _application(r, keys, pid, rec)
        s = sender(app, device, pin)
        if s.pin.indexed:
            raise ProcessError(f"pin {pin!r} of device {device!r} is indexed (sendIndex): inject sends on every "
                               "edge, which an indexed pin never does")
        item = encode(s, fields)
        targets = _destination_regions(app, regions, s.device, s.pin_index)
        if targets:
            q = keys.queues(pid)
            call = scripts.Call().key(keys.proc(pid), q.active).key(*[q.queue(t) for t in targets]).arg(item)
            if not r.eval(scripts.source("inject"), len(call.keys), *call.keys, *call.args):
                state = store.text(r.hget(keys.proc(pid), "state")) or "over"
                raise ProcessError(f"process {pid} is ending ({state}): the message was not injected")
    return {"pid": pid, "item": item, "regions": targets}


def _destination_regions(app: Application, regions: array[int], device: int, pin: int) -> list[int]:
    """The regions holding a destination of ``(device, pin)``, as the sending engine computes them."""
    e = app.instance.edges  # slices and zip run in C: a million edges take a fraction of a second
    src, spin, dst = e[0::EDGE_WORDS], e[1::EDGE_WORDS], e[2::EDGE_WORDS]
    out = {regions[d] for s, p, d in zip(src, spin, dst) if s == device and p == pin}
    return sorted(out)


__all__ = ["inspect", "inject", "SAMPLE"]
