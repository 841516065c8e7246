"""How processes end: a region ending (Done, when it is the last), failures, and the reaper.

The record, not Celery, says how a process ended, and the first ending wins: the last region to
end ends it Done once every region has stored its part of the result (no Celery chord: the
ledger's ``region_end`` script does it, in the region's end); the last region of a failed or killed
process ends it Failed or Killed with the first cause; the reaper ends processes whose workers
vanished (their regions never end).  Every ending frees the
process's slots, and what that admits is started (:mod:`dispatch`).
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, cast

import redis

from pstack_tasks.config import settings
from pstack_tasks.fleet import store
from pstack_tasks.fleet.causes import Cause, record_first
from pstack_tasks.fleet.dispatch import ledger, start
from pstack_tasks.fleet.keys import Keys
from pstack_tasks.fleet.ledger import Admitted
from pstack_tasks.fleet.persistence.recovery import recover
from pstack_tasks.native.results import merge_results
from pstack_tasks.protocol import Metric

logger = logging.getLogger(__name__)


def end_process(pid: int, state: str | None, reason: str) -> bool:
    """End a process (the first ending wins; ``state`` None: Killed if someone killed it, else
    Failed), free its slots and engines' keys, start what fits now.  True if this call ended it."""
    if state is None and recover(pid, reason):  # a lost worker and a checkpoint: resume (docs/persistence.md)
        return True
    ending = ledger().end(pid, state, reason)
    if ending is None:
        return False
    if ending.ended:
        logger.info("process %s %s: %s", pid, ending.state, reason)
    start(ending.engine, ending.admitted)
    return ending.ended


def after_region(pid: int, engine: str, aborted: bool, regions: int, admitted: list[Admitted]) -> None:
    """A region ended (its slot already given back, ``admitted`` admitted by that): start them,
    and end a failed process once all its regions are down."""
    start(engine, admitted)
    if aborted:
        r, keys = store.client(), Keys.current()
        pipe = r.pipeline()
        pipe.get(keys.abort(pid))
        pipe.scard(keys.ended(pid))
        abort, ended = pipe.execute()
        if abort and int(ended) >= regions:
            end_process(pid, None, abort)


def exit_text(metrics: Mapping[str, Any]) -> str:
    """A region's exit code and reason as ``Keys.exits`` keeps them (what ending its process Done needs)."""
    return json.dumps({k: metrics[k] for k in (Metric.EXIT_CODE, Metric.EXIT_REASON) if k in metrics})


def _done_reason(metrics: Mapping[str, Any]) -> str:
    return f"exit code {metrics.get(Metric.EXIT_CODE, 0)} ({metrics.get(Metric.EXIT_REASON, '')})"


def finish_done(pid: int, parts: Sequence[Mapping[str, Any]]) -> None:
    """The chord callback's work: every region has stored its part; the process is Done.

    ``parts`` are what the region tasks returned: their region, host and metrics (the exit code
    and reason come from them), ``stale`` for a region of a process that had already ended, or
    ``stopped`` for one stopped by a kill (the last region to end ends such a process).
    """
    if any(p.get("stale") or p.get("stopped") for p in parts):
        return
    r, keys = store.client(), Keys.current()
    clients = json.loads(r.hget(keys.proc(pid), "client_regions") or "[]")
    if clients:  # regions served by client engines (fleet/pyengine): the last one to end ends it
        finish_when_ended(pid)
        return
    metrics = merge_results({int(p["region"]): p for p in parts})["metrics"]
    end_process(pid, "Done", _done_reason(metrics))


def finish_when_ended(pid: int) -> None:
    """End a process with client-served regions Done once every region has stored its part of
    the result: its fleet regions (the last one's end, worker/region.py) and its client engines
    end in either order, and whichever comes last ends it."""
    r, keys = store.client(), Keys.current()
    rec = r.hgetall(keys.proc(pid))
    if rec.get("state") != "Running":
        return
    regions = json.loads(rec["regions"]) + json.loads(rec.get("client_regions") or "[]")
    parts = {int(x): json.loads(t) for x, t in r.hgetall(keys.result(pid)).items()}
    ended = {int(x) for x in r.smembers(keys.ended(pid))}
    if any(x not in parts for x in regions) or any(x not in ended for x in json.loads(rec["regions"])):
        return
    metrics = merge_results(parts)["metrics"]
    end_process(pid, "Done", _done_reason(metrics))


def lost_regions(r: redis.Redis, keys: Keys, pid: int, regions: list[int], admitted: float, start_timeout: float,
                 exclude: int | None = None, clients: Sequence[int] = ()) -> Cause | None:
    """Why a region of the process is gone, if one is: heartbeat expired (its worker was lost:
    coded ``WorkerLost``), or never started; or a region served by a client's Python engine
    (``clients``) whose client stopped beating."""
    others = [x for x in regions if x != exclude]
    pipe = r.pipeline(transaction=False)
    pipe.smembers(keys.ended(pid))
    pipe.smembers(keys.started(pid))
    pipe.hgetall(keys.lease(pid))
    for x in others:
        pipe.exists(keys.beat(pid, x))
    ended, started, lease, *beats = pipe.execute()
    for x, beat in zip(others, beats):
        if beat or str(x) in ended:
            continue
        host = (lease.get(str(x)) or "?|").split("|")[0]
        if str(x) in started:
            return Cause.worker_lost(f"region {x} on {host} stopped responding (its worker was lost)")
        if time.time() - admitted > start_timeout:
            return Cause(f"region {x} never started on {host} within {start_timeout:g} s (is that worker running?)")
    return lost_client(r, keys, pid, list(clients), admitted) if clients else None


def lost_client(r: redis.Redis, keys: Keys, pid: int, clients: list[int], admitted: float) -> Cause | None:
    """A client-served region whose heartbeat (``Keys.client_beat``, fleet/pyengine/heartbeat.py)
    expired before the region stored its part: its client died.  A client beats before its process
    is queued; one TTL of grace after admission covers a beat that could not be written then."""
    pipe = r.pipeline(transaction=False)
    pipe.hkeys(keys.result(pid))
    pipe.hmget(keys.proc(pid), [f"client_host:{x}" for x in clients])
    for x in clients:
        pipe.exists(keys.client_beat(pid, x))
    parts, names, *beats = pipe.execute()
    if time.time() - admitted <= settings().heartbeat_ttl:
        return None
    for x, name, beat in zip(clients, names, beats):
        if not beat and str(x) not in parts:
            return Cause(f"region {x} (served by client {name or '?'}) was lost: its heartbeat expired")
    return None


def reap(pid: int) -> str | None:
    """End a running process whose regions are gone without ending it (host lost).

    Called by the control worker for every running process, and by ``block`` for its own.
    Returns the reason if it ended the process.
    """
    r, keys = store.client(), Keys.current()
    rec = r.hgetall(keys.proc(pid))
    if rec.get("state") != "Running":
        return None
    regions = json.loads(rec["regions"])
    cfg = settings()
    clients = json.loads(rec.get("client_regions") or "[]")
    lost = lost_regions(r, keys, pid, regions, float(rec.get("started") or 0), cfg.start_timeout, clients=clients)
    abort = r.get(keys.abort(pid))
    if lost and not abort:
        abort = record_first(r, keys, pid, lost)
    if not abort:
        return None
    # Aborted: wait until no unfinished region still beats (they stop within a second), then end it.
    ended = r.smembers(keys.ended(pid))
    pipe = r.pipeline(transaction=False)
    for x in regions:
        if str(x) not in ended:
            pipe.exists(keys.beat(pid, x))
    if any(pipe.execute()):
        return None
    return str(abort) if end_process(pid, None, str(abort)) else None


def reap_all() -> list[int]:
    """Reap every running process; the pids that were ended."""
    r, keys = store.client(), Keys.current()
    ended = []
    for pid in sorted(int(p) for p in r.smembers(keys.running)):
        if reap(pid):
            ended.append(pid)
        elif not r.exists(keys.proc(pid)):
            r.srem(keys.running, pid)
    return ended


def trim_index(r: redis.Redis, keys: Keys, batch: int = 500) -> int:
    """Drop the oldest entries of the process index whose records have expired (records expire
    ``PSTACK_RESULT_EXPIRES`` after their process ended, oldest first); how many were dropped."""
    pids = [str(p) for p in cast("list[str]", r.zrange(keys.procs, 0, batch - 1))]
    if not pids:
        return 0
    pipe = r.pipeline(transaction=False)
    for pid in pids:
        pipe.exists(keys.proc(pid))
    gone = [pid for pid, alive in zip(pids, pipe.execute()) if not alive]
    if gone:
        r.zrem(keys.procs, *gone)
    return len(gone)


__all__ = ["trim_index", "end_process", "after_region", "exit_text", "finish_done", "lost_regions",
           "lost_client", "reap", "reap_all"]
