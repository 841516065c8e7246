"""A batch as Redis holds it: its record, its runs as submitted, and its ended runs' outcomes.

Keys come from :class:`~pstack_tasks.fleet.keys.Keys` (``batch:<id>``, ``batch-runs:<id>``,
``batch-ended:<id>``, the ``batches`` index).  Nothing here counts states as they change: the
counts are read from the runs' own process records (:mod:`.outcomes`), so a batch's view can never
disagree with its processes'.  Every key expires with the results (``PSTACK_RESULT_EXPIRES``),
refreshed whenever the batch is written.
"""
from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any, cast

import redis

from pstack_tasks.config import settings
from pstack_tasks.exceptions import BatchNotFound
from pstack_tasks.fleet import store
from pstack_tasks.fleet.batches.grid import RunSpec
from pstack_tasks.fleet.keys import Keys


def not_found(batch_id: int) -> BatchNotFound:
    return BatchNotFound(f"no batch {batch_id} (unknown, or its record has expired)")


def create(fields: Mapping[str, Any]) -> int:
    """A new batch id, its record written (``fields`` JSON-encoded where not text)."""
    r, keys = store.client(), Keys.current()
    batch_id = int(r.incr(keys.next_batch))
    record = {"id": batch_id, **fields, "submitted": f"{time.time():.3f}", "submitted_runs": 0}
    pipe = r.pipeline(transaction=True)
    pipe.hset(keys.batch(batch_id), mapping={k: v if isinstance(v, str) else json.dumps(v) for k, v in record.items()})
    pipe.expire(keys.batch(batch_id), settings().result_expires)
    pipe.zadd(keys.batches, {str(batch_id): batch_id})
    pipe.execute()
    return batch_id


def add_runs(batch_id: int, runs: Sequence[tuple[RunSpec, int]]) -> bool:
    """Note that each run ``spec`` of the batch is process ``pid``, in one round trip; whether the
    batch has been killed meanwhile (its submitter then stops)."""
    r, keys = store.client(), Keys.current()
    expires = settings().result_expires
    pipe = r.pipeline(transaction=True)
    pipe.hset(keys.batch_runs(batch_id),
              mapping={str(spec.index): json.dumps(dict(spec.as_dict(), pid=pid)) for spec, pid in runs})
    pipe.hincrby(keys.batch(batch_id), "submitted_runs", len(runs))
    for key in (keys.batch(batch_id), keys.batch_runs(batch_id)):
        pipe.expire(key, expires)
    pipe.hget(keys.batch(batch_id), "killed_by")
    return bool(pipe.execute()[-1])


def note(batch_id: int, **fields: Any) -> None:
    """Set fields of the batch record (``killed_by``, ``error``, ``ended``)."""
    r, keys = store.client(), Keys.current()
    r.hset(keys.batch(batch_id), mapping={k: str(v) for k, v in fields.items()})


def read(batch_id: int, r: redis.Redis | None = None, keys: Keys | None = None) -> dict[str, Any]:
    """The batch record, decoded (``grid``, ``seeds``, ``rmap`` as values, counts as ints).

    Raises:
        BatchNotFound: no such batch (never was, or its record has expired).
    """
    r, keys = r or store.client(), keys or Keys.current()
    raw = store.text_hash(r.hgetall(keys.batch(batch_id)))
    if not raw:
        raise not_found(batch_id)
    return decode(raw)


def decode(raw: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = dict(raw)
    for k in ("id", "total", "runs", "submitted_runs", "devices"):
        if k in out:
            out[k] = int(out[k])
    for k in ("grid", "seeds", "rmap"):
        if k in out:
            out[k] = json.loads(out[k])
    for k in ("submitted", "ended"):
        out[k] = float(out[k]) if out.get(k) else None
    out["group"] = out.get("group") or None
    return out


def ids(limit: int = 100) -> list[int]:
    """The newest batch ids, newest first."""
    r, keys = store.client(), Keys.current()
    return [int(b) for b in cast("list[str]", r.zrevrange(keys.batches, 0, limit - 1))]


__all__ = ["BatchNotFound", "not_found", "create", "add_runs", "note", "read", "decode", "ids"]
