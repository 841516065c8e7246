"""Reading what Redis holds about a process: its record as the API shows it, and its result.

A Done process's result is stored as the regions left it: one field per region in
``result:<pid>`` (written by each region in its end-of-region transaction), merged here when
it is read.  So the regions' states cross Redis once, and nothing merges them on the way.
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

import redis

from pstack_tasks.exceptions import ProcessNotFound
from pstack_tasks.fleet import store
from pstack_tasks.fleet.keys import Keys
from pstack_tasks.native.results import merge_results

#: the states a process ends in
ENDED = ("Done", "Failed", "Killed")


def not_found(pid: int) -> ProcessNotFound:
    """The error for a pid Redis has no record of."""
    return ProcessNotFound(f"no process {pid} (unknown, or its record has expired)")


def recovery_notes(raw: Iterable[str | bytes]) -> list[dict[str, Any]]:
    """The automatic recoveries of a process as ``recoveries:<pid>`` lists them (oldest first):
    ``{"time", "reason", "checkpoint"}`` each (fleet/persistence/recovery.py writes them)."""
    return [json.loads(note) for note in raw]


def describe(rec: Mapping[str, str], progress: Mapping[str, str] | None = None,
             usage: Mapping[str, str] | None = None, queues: Mapping[int, int] | None = None,
             recoveries: Iterable[str | bytes] = ()) -> dict[str, Any]:
    """A process record as the API shows it; ``progress`` is the regions' live counters, ``usage``
    their engines' memory and CPU seconds, ``queues`` their queue lengths (``status`` reads them),
    ``recoveries`` the notes of its automatic recoveries (``ps`` and ``status`` read them)."""
    state = rec.get("state")
    if rec.get("recovering") and state in ("Submitted", "Waiting"):  # queued again after losing a worker
        state = "Recovering"
    out: dict[str, Any] = {
        "pid": int(rec["pid"]), "state": state, "user": rec.get("user"), "group": rec.get("group"),
        "graph_type": rec.get("graph_type"), "engine": rec.get("engine"),
        "devices": int(rec.get("devices", 0)), "edges": int(rec.get("edges", 0)),
        "regions": json.loads(rec.get("regions", "[]")), "rmap": json.loads(rec.get("rmap", "{}")),
        "rcon": json.loads(rec.get("rcon", "{}")), "hosts": json.loads(rec.get("hosts", "{}")),
        "reason": rec.get("reason", ""), "file": rec.get("file"),
        "recoveries": recovery_notes(recoveries), "restarts": int(rec.get("restarts") or 0),
        "run": int(rec.get("run") or 0),
        "last_checkpoint": float(rec["last_checkpoint"]) if rec.get("last_checkpoint") else None,
    }
    for t in ("submitted", "started", "ended"):
        out[t] = float(rec[t]) if rec.get(t) else None
    start = out["started"] or out["submitted"]
    out["elapsed"] = round((out["ended"] or time.time()) - start, 3) if start else None
    per_region: dict[int, dict[str, Any]] = {}
    for region, counts in (progress or {}).items():
        delivered, _, steps = counts.partition(" ")
        per_region[int(region)] = {"delivered": int(delivered), "steps": int(steps or 0)}
    for region, text in (usage or {}).items():
        rss, _, cpu = text.partition(" ")
        per_region.setdefault(int(region), {"delivered": 0, "steps": 0}).update(
            memory_mb=round(int(rss) / 2**20, 1), cpu_seconds=float(cpu or 0))
    for x, length in (queues or {}).items():
        per_region.setdefault(x, {"delivered": 0, "steps": 0})["queue"] = length
    out["progress"] = dict(sorted(per_region.items()))
    out["delivered"] = sum(p["delivered"] for p in per_region.values())
    out["steps"] = sum(p["steps"] for p in per_region.values())
    return out


def status(pid: int, r: redis.Redis | None = None, keys: Keys | None = None) -> dict[str, Any]:
    """The record of one process, with its live counters.

    Raises:
        ProcessNotFound: no such process (never was, or its record has expired).
    """
    r, keys = r or store.client(), keys or Keys.current()
    pipe = r.pipeline(transaction=False)
    pipe.hgetall(keys.proc(pid))
    pipe.hgetall(keys.progress(pid))
    pipe.hgetall(keys.usage(pid))
    pipe.lrange(keys.recoveries(pid), 0, -1)
    rec, progress, usage, recoveries = pipe.execute()
    if not rec:
        raise not_found(pid)
    queues = None
    if rec.get("state") == "Running":  # per region: messages waiting in its queue now
        regions = [int(x) for x in json.loads(rec.get("regions") or "[]")]
        q = keys.queues(pid)
        pipe = r.pipeline(transaction=False)
        for x in regions:
            pipe.llen(q.queue(x))
        queues = dict(zip(regions, (int(n) for n in pipe.execute())))
    return describe(rec, progress, usage, queues, recoveries)


def part_text(part: Mapping[str, Any]) -> str:
    """One region's part of the result (its states, metrics and host) as ``result:<pid>`` holds it;
    the ledger's ``region_end`` script stores it there while the process is Running."""
    return json.dumps(part)


def read_result(pid: int, r: redis.Redis | None = None, keys: Keys | None = None) -> dict[str, Any] | None:
    """The merged result of a Done process ``{"states", "metrics", "regions", "pid", "hosts"}``
    (None once it has expired)."""
    r, keys = r or store.client(), keys or Keys.current()
    raw = r.hgetall(keys.result(pid))
    if not raw:
        return None
    parts = {int(region): json.loads(text) for region, text in raw.items()}
    result = merge_results(parts)
    result["pid"] = pid
    result["hosts"] = {str(region): parts[region].get("host") for region in sorted(parts)}
    return result


__all__ = ["ENDED", "describe", "recovery_notes", "status", "read_result", "part_text", "not_found"]
