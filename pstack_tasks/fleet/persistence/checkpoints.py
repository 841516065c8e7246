"""Checkpoints: a snapshot plus everything a process needs to resume from it, stored durably.

A checkpoint is the resume file of one cut (:mod:`resume_file`).  Small ones are kept in Redis
(``checkpoint:<pid>:<id>``), ones over PSTACK_CHECKPOINT_REDIS_MAX bytes in PSTACK_CHECKPOINT_DIR
(``<dir>/<pid>/<id>.ckpt``: shared storage on a fleet, as every worker must read it); the list
``checkpoints:<pid>`` says where each is, oldest first, and keeps the last PSTACK_CHECKPOINTS_KEPT.
Both outlive the process (for ``restart``) as long as its record does.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from pstack_tasks.config import settings
from pstack_tasks.exceptions import ConfigurationError, ProcessError
from pstack_tasks.fleet import store
from pstack_tasks.fleet.keys import Keys
from pstack_tasks.fleet.persistence.barrier import MODE_NO_STATES, pause_all
from pstack_tasks.fleet.persistence.binary import binary_client
from pstack_tasks.fleet.persistence.dumps import SUPERVISOR_NOT_PLAIN
from pstack_tasks.fleet.persistence.resume_file import is_resume_file, resume_bytes


def checkpoint(pid: int, timeout: float | None = None) -> dict[str, Any]:
    """Take a checkpoint of running process ``pid`` now; what :func:`checkpoints` lists of it.

    Raises:
        ProcessNotFound, ProcessError: as a snapshot (the process is not running, a region did not
            pause in time); ConfigurationError: a big checkpoint and no PSTACK_CHECKPOINT_DIR.
    """
    cut = pause_all(pid, MODE_NO_STATES, timeout)
    if any(d.supervisor == SUPERVISOR_NOT_PLAIN for d in cut.dumps.values()):
        raise ProcessError(f"process {pid}: the state of graph type {cut.record.get('graph_type')!r}'s supervisor is "
                           "not plain data (a std::vector, a pointer, ...): it cannot be checkpointed (a snapshot can)")
    data = resume_bytes(cut)
    delivered = sum(d.counters["delivered"] for d in cut.dumps.values())
    return store_checkpoint(pid, data, {"time": round(cut.taken, 3), "pause_seconds": cut.pause_seconds,
                                        "delivered": delivered, "regions": sorted(cut.dumps),
                                        "rmap": json.loads(cut.record.get("rmap") or "{}")})


def store_checkpoint(pid: int, data: bytes, meta: dict[str, Any]) -> dict[str, Any]:
    """Keep ``data`` as the process's next checkpoint and drop the oldest beyond the last K."""
    cfg = settings()
    with store.reporting():
        r, keys = store.client(), Keys.current()
        cid = int(r.hincrby(keys.proc(pid), "checkpoints_taken", 1))
        entry = dict(meta, id=cid, size=len(data))
        if len(data) <= cfg.checkpoint_redis_max:
            binary_client().set(keys.checkpoint(pid, cid), data)
            entry["where"] = "redis"
        else:
            entry["where"] = str(_write_file(pid, cid, data))
        pipe = r.pipeline(transaction=True)
        pipe.rpush(keys.checkpoints(pid), json.dumps(entry))
        pipe.lrange(keys.checkpoints(pid), 0, -1)
        pipe.hset(keys.proc(pid), "last_checkpoint", f"{entry['time']}")
        _, entries, _ = pipe.execute()
        for old in [json.loads(e) for e in entries][:max(0, len(entries) - max(1, cfg.checkpoints_kept))]:
            _drop(r, keys, pid, old)
    return entry


def _write_file(pid: int, cid: int, data: bytes) -> Path:
    root = settings().checkpoint_dir
    if not root:
        limit = settings().checkpoint_redis_max
        raise ConfigurationError(f"checkpoint of process {pid} is {len(data)} bytes, over PSTACK_CHECKPOINT_REDIS_MAX="
                                 f"{limit}: set PSTACK_CHECKPOINT_DIR (shared storage) for it")
    path = Path(root) / str(pid) / f"{cid}.ckpt"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def _drop(r: Any, keys: Keys, pid: int, entry: dict[str, Any]) -> None:
    r.lrem(keys.checkpoints(pid), 1, json.dumps(entry))
    if entry.get("where") == "redis":
        r.delete(keys.checkpoint(pid, entry["id"]))
    else:
        Path(entry["where"]).unlink(missing_ok=True)


def forget_checkpoints(pid: int) -> None:
    """Every checkpoint of ``pid`` deleted, in Redis and in PSTACK_CHECKPOINT_DIR (``flush``)."""
    r, keys = store.client(), Keys.current()
    for entry in checkpoints(pid):
        _drop(r, keys, pid, entry)
    r.delete(keys.checkpoints(pid))


def checkpoints(pid: int) -> list[dict[str, Any]]:
    """A process's checkpoints, oldest first: ``{"id", "time", "size", "where", "delivered",
    "pause_seconds", "regions", "rmap"}`` each."""
    with store.reporting():
        return [json.loads(e) for e in store.client().lrange(Keys.current().checkpoints(pid), 0, -1)]


def find(pid: int, checkpoint_id: int | None = None) -> dict[str, Any]:
    """The entry of checkpoint ``checkpoint_id`` of ``pid`` (None: the last one)."""
    entries = checkpoints(pid)
    if not entries:
        raise ProcessError(f"process {pid} has no checkpoint")
    if checkpoint_id is None:
        return entries[-1]
    for e in entries:
        if int(e["id"]) == int(checkpoint_id):
            return e
    have = ", ".join(str(e["id"]) for e in entries)
    raise ProcessError(f"process {pid} has no checkpoint {checkpoint_id} (it has {have})")


def load(pid: int, entry: dict[str, Any]) -> bytes:
    """The resume file of one checkpoint entry, checked."""
    if entry.get("where") == "redis":
        data = binary_client().get(Keys.current().checkpoint(pid, entry["id"]))
    else:
        try:
            data = Path(entry["where"]).read_bytes()
        except OSError as e:
            raise ProcessError(f"checkpoint {entry['id']} of process {pid}: cannot read {entry['where']}: "
                               f"{e.strerror}") from None
    if not isinstance(data, bytes) or not is_resume_file(data):
        raise ProcessError(f"checkpoint {entry['id']} of process {pid} is gone or damaged")
    return data


def age(entry: dict[str, Any]) -> float:
    """Seconds since the checkpoint was taken."""
    return max(0.0, time.time() - float(entry["time"]))


__all__ = ["checkpoint", "checkpoints", "find", "load", "store_checkpoint", "forget_checkpoints", "age"]
