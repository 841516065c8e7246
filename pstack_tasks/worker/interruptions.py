"""Why a running region must stop although nothing in its process failed: its time limit, or
Redis restarting under it.

The time limit is wall-clock and enforced from outside the engine (a handler that loops or
sleeps never returns to the engine's own check): the region's guard asks :class:`TimeLimit`
on every tick.  A psim engine's watcher enforces the same limit half a second earlier, naming the
handler it stopped; the guard's check is the backstop for every engine type.  A Redis restart is
told from the stack's run id (gone: the data was lost) and Redis's own run id (changed: restarted
with its data), as :mod:`pstack_tasks.fleet.epoch` explains.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import redis
from redis.client import Pipeline

from pstack_tasks.config import settings
from pstack_tasks.fleet import epoch
from pstack_tasks.fleet.keys import Keys

#: seconds after the limit at which the guard stops a region its engine has not stopped
GUARD_GRACE = 1.5


@dataclass
class TimeLimit:
    """A region's wall-clock limit: the process's ``time_limit`` option, else
    ``PSTACK_DEFAULT_TIME_LIMIT`` (0: none)."""

    seconds: float
    deadline: float

    @classmethod
    def of(cls, options: dict[str, object], started: float) -> TimeLimit:
        limit = float(options.get("time_limit") or 0) or settings().default_time_limit  # type: ignore[arg-type]
        return cls(limit, started + limit + GUARD_GRACE if limit > 0 else float("inf"))

    def exceeded(self, now: float | None = None) -> bool:
        return (time.monotonic() if now is None else now) >= self.deadline

    def reason(self, region: int, host: str) -> str:
        return f"region {region} on {host}: time limit of {self.seconds:g} s exceeded"


@dataclass(frozen=True)
class RedisIdentity:
    """Who Redis was when a region began: the stack's run id and the server's own."""

    stack_id: str | None
    server_id: str

    @classmethod
    def read(cls, r: redis.Redis, keys: Keys) -> RedisIdentity:
        pipe = r.pipeline(transaction=False)
        cls.ask(pipe, keys)
        stack_id, server = pipe.execute()
        return cls.of(stack_id, server)

    @staticmethod
    def ask(pipe: Pipeline, keys: Keys) -> None:
        """Queue the two reads an identity is made of (a region's start sends them with its own)."""
        pipe.get(keys.stack_id)
        pipe.info("server")

    @classmethod
    def of(cls, stack_id: str | None, server_info: dict[str, object]) -> RedisIdentity:
        """The identity from the replies to :meth:`ask`."""
        return cls(stack_id, str(server_info.get("run_id", "")))

    def restart(self, r: redis.Redis, keys: Keys, wait: float = 0.0) -> str | None:
        """The reason to stop if Redis restarted since (None: same Redis).  Waits up to ``wait``
        seconds for an unreachable Redis to come back (an engine whose relay lost Redis exits at
        once, before Redis is back)."""
        deadline = time.monotonic() + wait
        while True:
            try:
                now = RedisIdentity.read(r, keys)
                break
            except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
                if time.monotonic() >= deadline:
                    return None
                time.sleep(0.2)
        if now.stack_id != self.stack_id:
            return epoch.DATA_LOST
        if now.server_id != self.server_id:
            return epoch.RESTARTED
        return None


__all__ = ["TimeLimit", "RedisIdentity", "GUARD_GRACE"]
