"""The stack's run id (its *epoch*): how clients and workers tell that Redis lost its data.

A Redis restarted without persistence comes back empty: the records, the ledger and the pid
counter are gone, and a counter that restarted at 1 would hand out pids that clients still
hold.  So the first user of a Redis writes a run id (``Keys.stack_id``) and, at the same time,
raises the pid counter to a floor taken from the clock (:func:`pid_floor`); every client that
waits, and every region guard, remembers the id it saw and checks it: a different or missing
id means "Redis restarted (data lost)".  A restart with AOF keeps the id; it is told from
Redis's own ``run_id`` (``INFO server``), which changes on every start.
"""
from __future__ import annotations

import time
import uuid
from typing import cast

import redis

from pstack_tasks.fleet.keys import Keys
from pstack_tasks.fleet.scripts import source

#: the reason of a process that Redis forgot while it ran
DATA_LOST = "Redis restarted (data lost)"
#: the reason of a process that was running when Redis restarted with its data (AOF)
RESTARTED = "Redis restarted while the process ran"
#: pids handed out by a fresh stack start here; the clock adds 10 a second (2024-01-01 = 0)
_CLOCK_ORIGIN = 1_704_067_200


def pid_floor(now: float | None = None) -> int:
    """The least pid a fresh stack hands out: above every pid an earlier stack on this Redis
    handed out, unless that one averaged more than 10 processes a second over its whole life."""
    return int(((now or time.time()) - _CLOCK_ORIGIN) * 10)


def ensure(r: redis.Redis, keys: Keys, floor: int | None = None) -> str:
    """The stack's run id, written (with the pid counter's floor: :func:`pid_floor` unless given;
    a private Redis that no one used before needs none) if this Redis has none."""
    found = cast("str | None", r.get(keys.stack_id))
    if found:
        return found
    script = r.register_script(source("stack_id"))
    least = pid_floor() if floor is None else floor
    sid, _ = script(keys=[keys.stack_id, keys.next_pid], args=[uuid.uuid4().hex, least])
    return str(sid)


def current(r: redis.Redis, keys: Keys) -> str | None:
    """The stack's run id now (None: this Redis has none, it lost its data)."""
    return cast("str | None", r.get(keys.stack_id))


__all__ = ["DATA_LOST", "RESTARTED", "pid_floor", "ensure", "current"]
