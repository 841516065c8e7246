"""How a batch's runs stand: each run's state, metrics and time, read from its process record,
and the batch's counts per state and its own state.

An ended run's outcome is copied into ``batch-ended:<id>`` by the first reader that sees it end,
so a batch's results outlive its processes' records and later reads touch only the runs still
going.
"""
from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import redis

from pstack_tasks.config import settings
from pstack_tasks.fleet import store
from pstack_tasks.fleet.batches import record
from pstack_tasks.fleet.keys import Keys
from pstack_tasks.fleet.records import ENDED, describe
from pstack_tasks.native.results import merge_results

#: the states a run can be in, in the order they are shown; Expired: its record is gone unread
STATES = ("Submitted", "Waiting", "Running", "Done", "Failed", "Killed", "Expired")
#: runs that are over
OVER = (*ENDED, "Expired")


@dataclass
class RunView:
    """One run as a batch shows it."""

    index: int
    params: dict[str, Any]
    run: int
    seed: Any
    pid: int | None
    state: str
    metrics: dict[str, Any] = field(default_factory=dict)
    elapsed: float | None = None
    reason: str = ""
    delivered: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "params": self.params, "run": self.run, "seed": self.seed, "pid": self.pid,
                "state": self.state, "metrics": self.metrics, "elapsed": self.elapsed, "reason": self.reason,
                "delivered": self.delivered}


@dataclass
class BatchView:
    """A batch's record, its runs, its counts per state and its own state."""

    record: dict[str, Any]
    runs: list[RunView]

    @property
    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATES, 0)
        for run in self.runs:
            out[run.state] = out.get(run.state, 0) + 1
        return out

    @property
    def total(self) -> int:
        return int(self.record.get("total", len(self.runs)))

    @property
    def ended(self) -> bool:
        """Every run is over (a batch whose submission stopped early counts only what it submitted)."""
        stopped = bool(self.record.get("killed_by") or self.record.get("error"))
        complete = len(self.runs) >= self.total or stopped
        return complete and all(run.state in OVER for run in self.runs)

    @property
    def state(self) -> str:
        """Submitting, Running, Done (every run Done), Failed (some did not end Done) or Killed."""
        if self.ended:
            if self.record.get("killed_by"):
                return "Killed"
            ok = all(run.state == "Done" for run in self.runs) and not self.record.get("error")
            return "Done" if ok else "Failed"
        return "Submitting" if len(self.runs) < self.total else "Running"

    def summary(self) -> dict[str, Any]:
        """The record with the counts per state and the batch's state: what ``pstack batches`` lists."""
        return dict(self.record, counts=self.counts, state=self.state)


def view(batch_id: int) -> BatchView:
    """The batch and every run as they stand now, in four round trips to Redis at most, however
    many runs it has.

    Raises:
        BatchNotFound: no such batch.
    """
    r, keys = store.client(), Keys.current()
    with store.reporting():
        pipe = r.pipeline(transaction=False)
        for key in (keys.batch(batch_id), keys.batch_runs(batch_id), keys.batch_ended(batch_id)):
            pipe.hgetall(key)
        raw_rec, raw_runs, raw_kept = (store.text_hash(x) for x in pipe.execute())
        if not raw_rec:
            raise record.not_found(batch_id)
        rec = record.decode(raw_rec)
        submitted = {int(i): json.loads(t) for i, t in sorted(raw_runs.items(), key=lambda kv: int(kv[0]))}
        kept = {int(i): json.loads(t) for i, t in raw_kept.items()}
        fresh = _read_live(r, keys, {i: int(submitted[i]["pid"]) for i in submitted if i not in kept})
        _keep(r, keys, batch_id, {i: o for i, o in fresh.items() if o["state"] in OVER})
        kept.update(fresh)
    out = BatchView(rec, [_run_view(i, submitted[i], kept[i]) for i in submitted])
    if out.ended and not rec.get("ended"):
        last = max((float(kept[i].get("ended") or 0) for i in submitted), default=0.0)
        rec["ended"] = last or time.time()
        _note_ended(batch_id, rec["ended"])
    return out


def _note_ended(batch_id: int, when: float) -> None:
    try:
        record.note(batch_id, ended=f"{when:.3f}")
    except redis.exceptions.NoPermissionError:
        pass


def _read_live(r: redis.Redis, keys: Keys, pids: Mapping[int, int]) -> dict[int, dict[str, Any]]:
    """Each run's outcome ``{state, metrics, elapsed, reason, delivered, ended}`` from its process
    record and live counters, and, for the Done ones, the metrics of its result."""
    pipe = r.pipeline(transaction=False)
    for pid in pids.values():
        pipe.hgetall(keys.proc(pid))
        pipe.hgetall(keys.progress(pid))
    replies = pipe.execute()
    out: dict[int, dict[str, Any]] = {}
    for i, raw, progress in zip(pids, replies[::2], replies[1::2]):
        if not raw:
            out[i] = {"state": "Expired", "metrics": {}, "elapsed": None, "reason": "its process record has expired"}
            continue
        d = describe(store.text_hash(raw), store.text_hash(progress))
        out[i] = {"state": d["state"], "metrics": {}, "elapsed": d["elapsed"], "reason": d["reason"] or "",
                  "delivered": d["delivered"], "ended": d["ended"]}
    done = [i for i in out if out[i]["state"] == "Done"]
    pipe = r.pipeline(transaction=False)
    for i in done:
        pipe.hgetall(keys.result(pids[i]))
    for i, parts in zip(done, pipe.execute()):
        if parts:  # merged as records.read_result merges them; the states are not kept
            merged = merge_results({int(k): json.loads(v) for k, v in store.text_hash(parts).items()})
            out[i]["metrics"] = dict(merged["metrics"])
            out[i]["delivered"] = int(merged["metrics"].get("Delivered messages", out[i]["delivered"]))
    return out


def _keep(r: redis.Redis, keys: Keys, batch_id: int, outcomes: Mapping[int, Mapping[str, Any]]) -> None:
    """Copy ended runs' outcomes into the batch (one round trip), so they outlive their processes."""
    if not outcomes:
        return
    try:
        pipe = r.pipeline(transaction=False)
        pipe.hset(keys.batch_ended(batch_id), mapping={str(i): json.dumps(o) for i, o in outcomes.items()})
        pipe.expire(keys.batch_ended(batch_id), settings().result_expires)
        pipe.execute()
    except redis.exceptions.NoPermissionError:
        pass  # a read-only user reads the runs again next time


def _run_view(index: int, submitted: Mapping[str, Any], outcome: Mapping[str, Any]) -> RunView:
    return RunView(index, dict(submitted.get("params") or {}), int(submitted.get("run", 0)), submitted.get("seed"),
                   submitted.get("pid"), str(outcome["state"]), dict(outcome.get("metrics") or {}),
                   outcome.get("elapsed"), str(outcome.get("reason") or ""), int(outcome.get("delivered") or 0))


__all__ = ["STATES", "OVER", "RunView", "BatchView", "view"]
