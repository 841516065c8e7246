"""``flush()``: forget ended processes, as pstack's pcli did: their records and results go, so
``ps`` lists what is still of interest (and Redis gives the memory back before the records expire).

A user flushes their own ended processes; an admin (``PSTACK_ADMINS``) flushes every user's.
Processes still Submitted, Waiting or Running are never touched: their keys are in use.
"""
from __future__ import annotations

from typing import cast

from pstack_tasks.fleet import store
from pstack_tasks.fleet.keys import Keys
from pstack_tasks.fleet.persistence.checkpoints import forget_checkpoints
from pstack_tasks.fleet.records import ENDED
from pstack_tasks.fleet.users import current_user, is_admin


def _keys_of(keys: Keys, pid: int) -> list[str]:
    """Every key an ended process leaves behind until it expires (docs/fleet.md)."""
    return [keys.proc(pid), keys.result(pid), keys.wake(pid), keys.log(pid), keys.progress(pid), keys.abort(pid),
            keys.lease(pid), keys.started(pid), keys.ended(pid), keys.exits(pid), keys.usage(pid), keys.recoveries(pid)]


def flush(user: str | None = None) -> list[int]:
    """Remove the records and results of the caller's ended processes (an admin's: everyone's, or
    only ``user``'s when named); the pids removed, newest first.

    Raises:
        PermissionDenied: ``user`` names another user and the caller is no admin, or the Redis
            user may not delete.
    """
    from pstack_tasks.exceptions import PermissionDenied
    who = current_user()
    admin = is_admin(who)
    if user is not None and user != who and not admin:
        raise PermissionDenied(f"only an admin (PSTACK_ADMINS) can flush {user}'s processes, and you are {who}")
    owner = user if user is not None else (None if admin else who)
    r, keys = store.client(), Keys.current()
    with store.reporting():
        pids = [int(p) for p in cast("list[str]", r.zrevrange(keys.procs, 0, -1))]
        pipe = r.pipeline(transaction=False)
        for pid in pids:
            pipe.hmget(keys.proc(pid), "state", "user")
        gone = [pid for pid, (state, by) in zip(pids, pipe.execute())
                if state in ENDED and (owner is None or by == owner)]
        for pid in gone:  # checkpoints first: the list says where each is kept
            forget_checkpoints(pid)
        for start in range(0, len(gone), 500):
            chunk = gone[start:start + 500]
            pipe = r.pipeline(transaction=False)
            for pid in chunk:
                pipe.delete(*_keys_of(keys, pid))
            pipe.zrem(keys.procs, *[str(p) for p in chunk])
            pipe.execute()
    return gone


__all__ = ["flush"]
