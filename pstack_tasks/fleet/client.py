"""Processes as clients see them: ``submit`` and ``run`` an application on the fleet, ``block``
for it, ``status``, ``ps``, ``kill``, and the fleet's ``engines``.

A process is an application run on the worker fleet, with a pid, a record in Redis and an end.
``submit`` creates it (:mod:`submission`) and returns a :class:`Future`; ``run`` also waits and
returns the result.  Waiting reads the process's own record, never Celery's results: the
record says how it ended (:mod:`lifecycle`).
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast, overload

import redis

from pstack_tasks.config import mask_url, settings
from pstack_tasks.exceptions import ProcessFailed, ProcessNotFound, RedisUnavailable
from pstack_tasks.fleet import epoch, records, store
from pstack_tasks.fleet.dispatch import ledger
from pstack_tasks.fleet.keys import Keys
from pstack_tasks.fleet.lifecycle import end_process, reap
from pstack_tasks.fleet.records import ENDED, describe, not_found, read_result
from pstack_tasks.fleet.served import Rcon
from pstack_tasks.fleet.submission import Application, Request, create
from pstack_tasks.fleet.users import check_may_kill, current_user
from pstack_tasks.native.split_cache import RegionMap

Progress = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Future:
    """A submitted process: ``.pid`` now, the result from :func:`block` (or ``.result()``)."""

    pid: int

    def state(self) -> str:
        """Submitted, Waiting, Running, Done, Failed or Killed (ProcessNotFound once expired)."""
        return str(status(self.pid)["state"])

    def done(self) -> bool:
        return self.state() in ENDED

    def result(self, timeout: float | None = None) -> dict[str, Any]:
        return block_one(self.pid, timeout)


def submit(xml: Application, rmap: RegionMap = None, rcon: Rcon | None = None,
           level: int = 1, verbose: bool = False, engine: str | None = None,
           options: Mapping[str, Any] | None = None, regions: int | None = None, group: str | None = None,
           overrides: Mapping[str, Any] | None = None, checkpoint_every: float = 0) -> Future:
    """Start an application on the fleet as a new process; its :class:`Future` at once.

    Args:
        xml: the application file's path, or its XML text.
        rmap: region map ``{device: region}``; unmapped devices are in region 0. Each region
            runs as one task on a worker of the engine type, all at the same time.
            ``"auto:K"`` is ``regions=K``.
        rcon: pin regions to named workers ``{region: host}``, or serve them in this process
            with a Python engine ``{region: Engine(handler)}`` (docs/debugging.md).
        level: handler_log level shown by ``verbose``.
        verbose: stream ``[host] Region r -> line`` log lines to whoever blocks on it.
        engine: engine type (default ``PSTACK_ENGINE``, ``psim``).
        options: passed to the engine's ``run_engine`` (``max_steps``, ``time_limit``, ...).
        regions: split into this many regions by METIS (balanced, fewest cut edges, cached per
            instance); the result's ``"partition"`` reports the cut and balance.  Refused with
            an rmap.
        group: the process's group (default ``PSTACK_GROUP``): workers started with ``--group``
            serve only their groups' processes (docs/fleet.md, "Worker groups").
        overrides: ``{key: value}`` patched into this run's instance, without re-parsing or
            compiling: ``graph:NAME``, ``type:TYPE.NAME``, ``device:ID.NAME``,
            ``state:TYPE.NAME`` (docs/batches.md).
        checkpoint_every: take a checkpoint every this many seconds while it runs (0: none); a
            process with checkpoints resumes from its last one when it loses a worker
            (docs/persistence.md).

    Raises:
        GraphError: the file is malformed, or an override names nothing or does not fit; nothing
            was queued.
        ProcessRefused: the fleet can never run it (the message gives needed/available).
    """
    pid, _ = create(Request(xml, rmap, rcon, level, verbose, engine, options, regions, group=group,
                                    overrides=overrides, checkpoint_every=checkpoint_every))
    return Future(pid)


@overload
def run(xml: Application, rmap: RegionMap = ..., rcon: Rcon | None = ...,
        level: int = ..., verbose: bool = ..., async_: Literal[False] = ..., engine: str | None = ...,
        options: Mapping[str, Any] | None = ..., timeout: float | None = ...,
        progress: Progress | None = ..., kill_on_interrupt: bool = ...,
        regions: int | None = ..., group: str | None = ...,
        overrides: Mapping[str, Any] | None = ..., checkpoint_every: float = ...) -> dict[str, Any]: ...


@overload
def run(xml: Application, rmap: RegionMap = ..., rcon: Rcon | None = ...,
        level: int = ..., verbose: bool = ..., *, async_: Literal[True], engine: str | None = ...,
        options: Mapping[str, Any] | None = ..., timeout: float | None = ...,
        progress: Progress | None = ..., kill_on_interrupt: bool = ...,
        regions: int | None = ..., group: str | None = ...,
        overrides: Mapping[str, Any] | None = ..., checkpoint_every: float = ...) -> Future: ...


@overload
def run(xml: Application, rmap: RegionMap = ..., rcon: Rcon | None = ...,
        level: int = ..., verbose: bool = ..., async_: bool = ..., engine: str | None = ...,
        options: Mapping[str, Any] | None = ..., timeout: float | None = ...,
        progress: Progress | None = ..., kill_on_interrupt: bool = ...,
        regions: int | None = ..., group: str | None = ...,
        overrides: Mapping[str, Any] | None = ..., checkpoint_every: float = ...) -> dict[str, Any] | Future: ...


def run(xml: Application, rmap: RegionMap = None, rcon: Rcon | None = None,
        level: int = 1, verbose: bool = False, async_: bool = False, engine: str | None = None,
        options: Mapping[str, Any] | None = None, timeout: float | None = None,
        progress: Progress | None = None, kill_on_interrupt: bool = False,
        regions: int | None = None, group: str | None = None,
        overrides: Mapping[str, Any] | None = None, checkpoint_every: float = 0) -> dict[str, Any] | Future:
    """Run an application on the fleet as a new process and wait for it (pstack's ``run``).

    Arguments as :func:`submit`, and:
        async_: return its Future at once, as :func:`submit` does (pstack's ``run`` had this flag).
        timeout: give up waiting after this many seconds (TimeoutError; the process goes on).
        progress: receives the process's :func:`status` a few times a second while it waits
            (``delivered``: messages delivered so far).
        kill_on_interrupt: Ctrl-C while waiting kills the process, and the KeyboardInterrupt says
            so (``pstack run``); else the process goes on.

    Returns:
        the merged result ``{"states", "metrics", "regions", "hosts", "pid"}``, states in device order.

    Raises:
        GraphError, ProcessRefused: as :func:`submit`.
        ProcessFailed: it ended Failed or Killed (``.reason`` names the first cause).
    """
    pid, app = create(Request(xml, rmap, rcon, level, verbose, engine, options, regions, group=group,
                                      overrides=overrides, checkpoint_every=checkpoint_every))
    if async_:
        return Future(pid)
    try:
        result = block_one(pid, timeout, progress=progress)
    except KeyboardInterrupt:
        if not kill_on_interrupt:
            raise
        raise KeyboardInterrupt(f"killed process {pid}: {kill(pid)}") from None
    if "states" in result:  # in device order, as psim reports them
        states = result["states"]
        result["states"] = {n: states[n] for n in app.instance.names if n in states}
    return result


@overload
def block(futures: Future | int, timeout: float | None = ..., sink: Callable[[str], None] | None = ...,
          progress: Progress | None = ...) -> dict[str, Any]: ...


@overload
def block(futures: Iterable[Future | int], timeout: float | None = ..., sink: Callable[[str], None] | None = ...,
          progress: Progress | None = ...) -> list[dict[str, Any]]: ...


def block(futures: Future | int | Iterable[Future | int], timeout: float | None = None,
          sink: Callable[[str], None] | None = None,
          progress: Progress | None = None) -> dict[str, Any] | list[dict[str, Any]]:
    """Wait for one process (or each of a list) to end; its result, or a list of results.

    Verbose processes stream their log lines to ``sink`` (default: stdout) meanwhile.
    ``progress``, if given, receives the process's :func:`status` about four times a second
    (``delivered`` grows as the engines run).

    Raises:
        ProcessFailed: a process ended Failed or Killed.
        ProcessNotFound: no such process (never was, or its record has expired).
        TimeoutError: ``timeout`` seconds passed first (the process goes on).
    """
    if isinstance(futures, (Future, int)):
        return block_one(futures if isinstance(futures, int) else futures.pid, timeout, sink, progress)
    deadline = None if timeout is None else time.monotonic() + timeout
    out = []
    for f in futures:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        out.append(block_one(f if isinstance(f, int) else f.pid, left, sink, progress))
    return out


def block_one(pid: int, timeout: float | None, sink: Callable[[str], None] | None = None,
              progress: Progress | None = None) -> dict[str, Any]:
    """:func:`block` for one pid.

    Redis going away meanwhile is waited out for one heartbeat TTL; then RedisUnavailable names
    the process.  Redis back without its data (another stack id): the process is reported Failed.
    """
    waiter = _Waiter(pid, sink, progress)
    deadline = None if timeout is None else time.monotonic() + timeout
    outage: float | None = None
    while True:
        try:
            outcome = waiter.step(deadline, timeout)
            outage = None
        except (redis.ConnectionError, redis.TimeoutError) as e:
            outage = outage or time.monotonic()
            if time.monotonic() - outage > settings().heartbeat_ttl:
                raise RedisUnavailable(f"lost Redis at {mask_url(store.redis_url())} while waiting for process "
                                       f"{pid}: {e}") from None
            time.sleep(0.2)
            continue
        if outcome is not None:
            return outcome


class _Waiter:
    """One waiting client's view of a process: the record read again and again until it ends."""

    def __init__(self, pid: int, sink: Callable[[str], None] | None, progress: Progress | None) -> None:
        self.pid, self.progress = pid, progress
        self.r, self.keys = store.client(), Keys.current()
        with store.reporting():
            self.stack_id = epoch.current(self.r, self.keys)
        self.verbose: bool | None = None  # known from the first read of the record
        self.emit = sink or (lambda line: print(line, flush=True))
        self.log_pos = "0-0"
        self.next_reap = time.monotonic() + 1.0

    def step(self, deadline: float | None, timeout: float | None) -> dict[str, Any] | None:
        """Read the record once and wait a little; the result once it has ended."""
        r, keys, pid = self.r, self.keys, self.pid
        pipe = r.pipeline(transaction=False)  # the record and the stack id in one round trip
        pipe.hgetall(keys.proc(pid))
        pipe.get(keys.stack_id)
        raw, stack_id = pipe.execute()
        rec = store.text_hash(raw)
        if stack_id != self.stack_id:
            raise ProcessFailed(pid, "Failed", epoch.DATA_LOST)
        if not rec:
            raise not_found(pid)
        if self.verbose is None:
            self.verbose = rec.get("verbose") == "1"
        if rec["state"] in ENDED:
            if self.verbose:
                self.log_pos = _drain_log(r, keys, pid, self.log_pos, self.emit, 0)
            return _outcome(r, keys, pid, rec)
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"process {pid} is still {rec['state']} after {timeout:g} s")
        if self.progress is not None:
            self.progress(describe(rec, store.text_hash(r.hgetall(keys.progress(pid)))))
        if self.verbose:
            self.log_pos = _drain_log(r, keys, pid, self.log_pos, self.emit, 200)
        else:
            # Redis takes fractions of a second here; redis-py's annotation says int
            r.blmove(keys.wake(pid), keys.wake(pid), 0.25 if self.progress else 0.5, "LEFT", "LEFT")  # type: ignore[arg-type]
        if time.monotonic() >= self.next_reap:
            self.next_reap = time.monotonic() + 1.0
            reap(pid)
        return None


def _drain_log(r: redis.Redis, keys: Keys, pid: int, pos: str, emit: Callable[[str], None], block_ms: int) -> str:
    got = cast("list[tuple[str, list[tuple[str, dict[str, str]]]]] | None",
               r.xread({keys.log(pid): pos}, count=1000, block=block_ms or None))
    for _, entries in got or []:
        for entry_id, fields in entries:
            emit(fields.get("l", ""))
            pos = entry_id
    return pos


def _outcome(r: redis.Redis, keys: Keys, pid: int, rec: Mapping[str, str]) -> dict[str, Any]:
    if rec["state"] != "Done":
        raise ProcessFailed(pid, rec["state"], rec.get("reason", ""), rec.get("error"))
    result = read_result(pid, r, keys)
    if result is None:
        raise ProcessNotFound(f"the result of process {pid} has expired")
    if rec.get("partition"):  # an automatic split: its cut and balance
        result["partition"] = json.loads(rec["partition"])
    return result


def status(pid: int) -> dict[str, Any]:
    """The record of one process, with its live counters.

    Raises:
        ProcessNotFound: no such process (never was, or its record has expired).
    """
    with store.reporting():
        return records.status(pid)


def ps(user: str | None = None, limit: int = 1000, group: str | None = None) -> list[dict[str, Any]]:
    """The most recent processes of every user (newest first), or only ``user``'s, or only those
    of worker group ``group`` (docs/fleet.md, "Worker groups"); among the newest ``limit``.

    Everyone sees every process, with its owner in ``user``, as pstack's ``ps`` showed them:
    a shared fleet is easier to share when you can see who is using it.
    """
    r, keys = store.client(), Keys.current()
    with store.reporting():
        pids = [int(p) for p in cast("list[str]", r.zrevrange(keys.procs, 0, limit - 1))]
        pipe = r.pipeline(transaction=False)
        for pid in pids:
            pipe.hgetall(keys.proc(pid))
            pipe.hgetall(keys.progress(pid))
            pipe.lrange(keys.recoveries(pid), 0, -1)
        replies = pipe.execute()
    out, gone = [], []
    for pid, rec, progress, recoveries in zip(pids, replies[::3], replies[1::3], replies[2::3]):
        if not rec:
            gone.append(str(pid))
            continue
        d = describe(rec, progress, recoveries=recoveries)
        if (user and d["user"] != user) or (group and d["group"] != group):
            continue
        out.append(d)
    if gone:
        try:
            r.zrem(keys.procs, *gone)
        except redis.exceptions.NoPermissionError:
            pass  # a read-only monitoring user lists, others tidy up
    return out


def kill(pid: int, wait: float = 5.0) -> str:
    """Kill a process: waiting ones end at once, running ones once every region has stopped.

    Only its owner or an admin (``PSTACK_ADMINS``) may kill it; the record keeps who did
    (``killed_by``) and the reason says so.

    Returns the state it ended in (``Killed``, or how it had already ended).

    Raises:
        ProcessNotFound: no such process (never was, or its record has expired).
        PermissionDenied: the process belongs to another user and the caller is no admin
            (nothing is changed), or the Redis user may not write.
    """
    with store.reporting():
        return _kill(store.client(), Keys.current(), pid, wait)


def _kill(r: redis.Redis, keys: Keys, pid: int, wait: float) -> str:
    rec = store.text_hash(r.hgetall(keys.proc(pid)))
    if not rec:
        raise not_found(pid)
    who = current_user()
    check_may_kill(pid, rec, who)
    if rec["state"] in ENDED:
        return str(rec["state"])
    r.hset(keys.proc(pid), "killed_by", who)
    reason = f"killed by {who}"
    r.set(keys.abort(pid), reason, nx=True, ex=settings().result_expires)
    if rec["state"] in ("Waiting", "Submitted"):
        ledger().unqueue(rec["engine"], pid)
        end_process(pid, "Killed", reason)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        state = r.hget(keys.proc(pid), "state")
        if state in ENDED:
            return str(state)
        if state == "Waiting":  # it was Submitted above and has joined the queue since
            end_process(pid, "Killed", reason)
        reap(pid)
        time.sleep(0.05)
    return str(r.hget(keys.proc(pid), "state"))


def engines() -> list[dict[str, Any]]:
    """Every registered engine worker: type, host, slots, busy slots, online."""
    with store.reporting():
        return ledger().fleet()


__all__ = ["Future", "submit", "run", "block", "block_one", "status", "ps", "kill", "engines"]
