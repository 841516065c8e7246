"""One region of a process, as a worker runs it: the body of the ``pstack.region`` task.

A region is a gang member: it must stop when any peer fails, when the process is
killed, or when a peer's worker disappears, and it must say why.  A :class:`Guard`
does that beside the engine: it refreshes the region's heartbeat, reads the
process's abort flag, watches the peers' heartbeats and the worker itself, and
forwards verbose log lines.  The engine polls ``Guard.stop_reason``.  Guards are
ticked by one background thread per worker process (:class:`_Ticker`), started once:
a worker runs hundreds of short regions a minute, most of them over before their
first beat.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from redis.client import Pipeline

from pstack_tasks import engine as engine_registry
from pstack_tasks.config import settings
from pstack_tasks.exceptions import EngineError, PstackError, RegionStopped
from pstack_tasks.fleet import epoch, store
from pstack_tasks.fleet.keys import Keys
from pstack_tasks.fleet.ledger import Ledger
from pstack_tasks.fleet.lifecycle import after_region, lost_regions
from pstack_tasks.fleet.records import write_part
from pstack_tasks.memo import BoundedCache
from pstack_tasks.native import build
from pstack_tasks.worker.interruptions import RedisIdentity, TimeLimit

logger = logging.getLogger(__name__)
BEAT_INTERVAL = 0.25
PEER_INTERVAL = 1.0


class _Ticker(threading.Thread):
    """Ticks every running guard of this process every BEAT_INTERVAL (a slow tick of one
    delays the others' by as much, far below the heartbeat TTL)."""

    def __init__(self) -> None:
        super().__init__(daemon=True, name="region-guards")
        self.guards: list[Guard] = []
        self.lock = threading.Lock()

    def run(self) -> None:
        while True:
            time.sleep(BEAT_INTERVAL)
            with self.lock:
                due = [g for g in self.guards if time.monotonic() >= g.next_tick]
            for g in due:
                g.tick_now()

    @classmethod
    def add(cls, guard: Guard) -> None:
        global _ticker
        with _ticker_lock:
            if _ticker is None:
                _ticker = cls()
                _ticker.start()
            ticker = _ticker
        with ticker.lock:
            ticker.guards.append(guard)

    @staticmethod
    def remove(guard: Guard) -> None:
        ticker = _ticker
        if ticker is not None:
            with ticker.lock:
                if guard in ticker.guards:
                    ticker.guards.remove(guard)


_ticker: _Ticker | None = None
_ticker_lock = threading.Lock()


def _forget_ticker() -> None:
    """A forked child has no ticker thread (threads do not survive fork): it starts its own."""
    global _ticker, _ticker_lock
    _ticker, _ticker_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_ticker)


class Guard:
    """Heartbeat, abort flag, peers and parent watch for one running region."""

    def __init__(self, pid: int, region: int, host: str,
                 on_progress: Callable[[int, int], object] | None = None) -> None:
        self.pid, self.region, self.host = pid, region, host
        self.regions: list[int] = []
        self.admitted = 0.0
        self.keys = Keys.current()
        self.r = store.client()
        self.cfg = settings()
        self.parent = os.getppid()
        self.verbose = False
        self._reason: str | None = None
        self._halted = False
        self._tick_lock = threading.Lock()  # held while a tick runs: halt waits for it
        self.next_tick = 0.0
        self._lines: list[str] = []
        self._lines_lock = threading.Lock()
        self._next_peer_check = 0.0
        self.on_progress = on_progress
        self._counts: tuple[int, int] | None = None  # latest (delivered, steps) not yet published
        self.limit = TimeLimit(0.0, float("inf"))
        self.redis_id: RedisIdentity | None = None
        self.app_path: Path | None = None  # this host's copy of the application file
        self.app_file = "app.xml"  # the application file as the user named it

    # the engine's side
    def stop_reason(self) -> str | None:
        return self._reason

    def log(self, line: str) -> None:
        if self.verbose:
            with self._lines_lock:
                self._lines.append(f"[{self.host}] Region {self.region} -> {line}")

    def progress(self, delivered: int, steps: int) -> None:
        """The engine's live counters; published with the next heartbeat."""
        self._counts = (delivered, steps)

    # the guard's side
    def tick_now(self) -> None:
        with self._tick_lock:
            if self._halted:
                return
            self.next_tick = time.monotonic() + BEAT_INTERVAL
            try:
                self.tick()
            except Exception as e:  # Redis trouble: the engine goes on; peers judge by heartbeats
                logger.warning("region %s/%s guard: %s", self.pid, self.region, e)

    def tick(self) -> None:
        self.flush()
        pipe = self.r.pipeline()
        counts = self._take_counts(pipe)
        self._beat(pipe)
        pipe.get(self.keys.abort(self.pid))
        abort = pipe.execute()[-1]
        self._report(counts)
        if abort and not self._reason:
            self._reason = abort
        if os.getppid() != self.parent and not self._reason:
            self.fail(f"region {self.region}: the worker on {self.host} running it died")
        if self.limit.exceeded() and not self._reason:
            self.fail(self.limit.reason(self.region, self.host))
        if time.monotonic() >= self._next_peer_check and not self._reason:
            self._next_peer_check = time.monotonic() + PEER_INTERVAL
            restart = self.redis_id.restart(self.r, self.keys) if self.redis_id else None
            if restart:
                self.stop_for(restart)
                return
            lost = lost_regions(self.r, self.keys, self.pid, self.regions, self.admitted,
                                self.cfg.start_timeout, exclude=self.region)
            if lost:
                self.fail(lost)

    def begin(self) -> dict[str, str]:
        """Read the process record, and if it is Running, beat for the first time and say
        "started" in the same transaction (peers never see a started region without a heartbeat),
        then beat on in the background.  Returns the record (not Running: a stale task, nothing
        was started).  Peers are first looked at one interval later: at the start they may not
        have begun yet, and the reaper watches anyway."""
        started, beat = self.keys.started(self.pid), self.keys.beat(self.pid, self.region)
        pipe = self.r.pipeline()
        pipe.hgetall(self.keys.proc(self.pid))
        self._beat(pipe)
        pipe.sadd(started, self.region)
        pipe.expire(started, self.cfg.result_expires)
        pipe.get(self.keys.abort(self.pid))
        rec, *_, abort = pipe.execute()
        if rec.get("state") != "Running":  # undone: a region of an ended process never ran
            pipe = self.r.pipeline()
            pipe.delete(beat)
            pipe.srem(started, self.region)
            pipe.execute()
            return rec  # type: ignore[no-any-return]
        self.regions = json.loads(rec["regions"])
        self.app_file = rec.get("file") or "app.xml"
        self.admitted = float(rec.get("started") or time.time())
        self.verbose = rec.get("verbose") == "1"
        self.limit = TimeLimit.of(json.loads(rec.get("options") or "{}"), time.monotonic())
        self.redis_id = RedisIdentity.read(self.r, self.keys)
        if abort:
            self._reason = abort
        self._next_peer_check = time.monotonic() + PEER_INTERVAL
        self.next_tick = time.monotonic() + BEAT_INTERVAL
        _Ticker.add(self)
        return rec  # type: ignore[no-any-return]

    def fail(self, cause: str, error: str | None = None) -> None:
        """Record the first cause of the process's failure and stop this region.

        ``error`` names the project exception class of the cause: the first one goes into the
        process record, so a client's ProcessFailed exits with that family's status."""
        first = self.r.set(self.keys.abort(self.pid), cause, nx=True, ex=self.cfg.result_expires)
        if first and error:
            self.r.hset(self.keys.proc(self.pid), "error", error)
        self._reason = store.text(self.r.get(self.keys.abort(self.pid))) or cause

    def stop_for(self, cause: str) -> None:
        """Stop this region for ``cause``, recorded as the first cause when the record is still
        there (not after Redis lost it: that would write a stray record)."""
        if cause == epoch.DATA_LOST:
            self._reason = cause
        else:
            self.fail(cause)

    def flush(self) -> None:
        with self._lines_lock:
            lines, self._lines = self._lines, []
        if lines:
            pipe = self.r.pipeline(transaction=False)
            for line in lines:
                pipe.xadd(self.keys.log(self.pid), {"l": line}, maxlen=100000, approximate=True)
            pipe.expire(self.keys.log(self.pid), self.cfg.result_expires)
            pipe.execute()

    def _beat(self, pipe: Any) -> None:
        """Refresh this region's heartbeat: it expires unless refreshed within the TTL."""
        pipe.set(self.keys.beat(self.pid, self.region), self.host, px=int(self.cfg.heartbeat_ttl * 1000))

    def _take_counts(self, pipe: Any) -> tuple[int, int] | None:
        counts = self._take()
        self.publish(pipe, counts)
        return counts

    def _take(self) -> tuple[int, int] | None:
        """The latest counters not yet published (then none until the engine reports again)."""
        counts, self._counts = self._counts, None
        return counts

    def publish(self, pipe: Any, counts: tuple[int, int] | None) -> None:
        if counts is not None:
            key = self.keys.progress(self.pid)
            pipe.hset(key, str(self.region), f"{counts[0]} {counts[1]}")
            pipe.expire(key, self.cfg.result_expires)

    def _report(self, counts: tuple[int, int] | None) -> None:
        if counts is not None and self.on_progress is not None:
            try:
                self.on_progress(*counts)
            except Exception as e:  # a monitoring hook must never stop the region
                logger.warning("region %s/%s progress hook: %s", self.pid, self.region, e)

    def halt(self) -> tuple[int, int] | None:
        """Stop beating; the last counters not yet published (for the region's end transaction)."""
        _Ticker.remove(self)
        with self._tick_lock:  # a tick in flight finishes first
            self._halted = True
        try:
            self.flush()
        except Exception as e:
            logger.warning("region %s/%s guard: %s", self.pid, self.region, e)
        return self._take()


def run_region(pid: int, region: int, host: str,
               on_progress: Callable[[int, int], object] | None = None) -> dict[str, Any]:
    """Run one region of process ``pid`` here and store its part of the result in Redis.

    Returns what the chord callback needs: ``{"region", "host", "metrics"}`` (the states stay in
    Redis, written once), or ``{"region", "stale": True}`` if the process had already ended.
    ``on_progress(delivered, steps)`` is called from the guard thread about every 0.25 s while
    the engine runs (the counters also go to Redis for ``status``/``ps``/``top``).
    """
    guard = Guard(pid, region, host, on_progress)
    rec = guard.begin()
    if rec.get("state") != "Running":
        logger.info("region %s/%s: process is %s; nothing to do", pid, region, rec.get("state", "gone"))
        return {"region": region, "stale": True}
    part: dict[str, Any] | None = None
    try:
        part = dict(_run_engine(guard, rec), host=host)
    except BaseException as e:
        cause = _cause(guard, e)
        if not _is_error(guard, cause):  # a user's kill, Redis lost: not this worker's error
            logger.info("region %s/%s stopped: %s", pid, region, cause)
            return {"region": region, "stopped": cause}
        raise RegionStopped(cause) from None
    finally:
        _end_region(guard, rec["engine"], part)
    return {"region": region, "host": host, "metrics": part.get("metrics", {})}


def _is_error(guard: Guard, cause: str) -> bool:
    """Whether a region's stop is an error worth a task failure (and Celery's ERROR lines): not
    when the process was killed, or Redis restarted under it."""
    if cause in (epoch.DATA_LOST, epoch.RESTARTED):
        return False
    return not cause.startswith("killed by ")


def _run_engine(guard: Guard, rec: dict[str, str]) -> dict[str, Any]:
    """The region's engine, run with the process's options, stopped by the guard; its result."""
    keys, r, pid = guard.keys, guard.r, guard.pid
    run_engine = engine_registry.load(rec["engine"])
    path = guard.app_path = app_file(r, keys, pid, rec)
    options = dict(json.loads(rec.get("options") or "{}"))
    options.update(region=guard.region, pid=pid, prefix=keys.queue_prefix, redis_url=store.redis_url(),
                   should_stop=guard.stop_reason, level=int(rec.get("level") or 1), app_id=rec["app"],
                   progress=guard.progress)
    if guard.verbose:
        options["log"] = guard.log
    else:
        options["quiet"] = True
    return run_engine(str(path), json.loads(rec.get("rmap") or "{}"), options)


def _cause(guard: Guard, e: BaseException) -> str:
    """Why the region stopped: the process's first cause if there is one, else this region's own
    (recorded as the first cause, so the peers stop too)."""
    cause = guard.stop_reason()
    if cause is None and guard.redis_id is not None:  # an engine whose relay lost Redis fails first
        cause = guard.redis_id.restart(guard.r, guard.keys, wait=guard.cfg.heartbeat_ttl)
        if cause:
            guard.stop_for(cause)
    if cause is None and os.getppid() != guard.parent:
        cause = f"region {guard.region}: the worker on {guard.host} running it died"
        guard.fail(cause)
    if cause is None:
        cause = f"region {guard.region} on {guard.host}: {_describe(e)}"
        if guard.app_path is not None:  # name the user's file, not this host's copy of it
            cause = cause.replace(str(guard.app_path), guard.app_file)
        guard.fail(cause, type(e).__name__ if isinstance(e, PstackError) else None)
    return cause


def _end_region(guard: Guard, engine_type: str, part: dict[str, Any] | None) -> None:
    """The region is over: in one transaction its part of the result (if it has one), its last
    counters, "ended", its heartbeat gone, its slot back and the next waiting processes admitted;
    then those are started."""
    pid, region, keys = guard.pid, guard.region, guard.keys
    ledger = Ledger.of(guard.r, keys)
    counts = guard.halt()
    view = ledger.view(engine_type)

    def steps(pipe: Pipeline) -> None:
        if part is not None:
            write_part(pipe, keys, pid, region, part, guard.cfg.result_expires)
        guard.publish(pipe, counts)
        pipe.sadd(keys.ended(pid), region)
        pipe.expire(keys.ended(pid), guard.cfg.result_expires)
        pipe.delete(keys.beat(pid, region))
        pipe.get(keys.abort(pid))
        ledger.region_end(pipe, view, pid, region)
    *_, abort, admitted = ledger.transaction(steps)
    after_region(pid, engine_type, aborted=bool(abort), regions=len(guard.regions),
                 admitted=ledger.admitted(engine_type, admitted))


def app_file(r: Any, keys: Keys, pid: int, rec: dict[str, str]) -> Path:
    """The process's application as a file on this host, fetched from Redis once per content hash.

    Kept under the cache directory by hash (``apps/<sha256>/<file name>``, the name as the user
    gave it, for error messages), so every region of every process of one application on this
    host reads the same file.
    """
    key = (rec["app"], rec.get("file") or "app.xml")
    path = _app_paths.get(key)
    if path is None:
        path = build.app_dir(rec["app"]) / (Path(key[1]).name or "app.xml")
        _app_paths.put(key, path)
    if path.is_file():
        return path
    xml = r.get(keys.app(rec["app"]))
    if xml is None:
        raise EngineError(f"the application text of process {pid} has expired from Redis")
    build.write_atomically(path, xml.encode())
    return path


#: where each application's file is on this host (build.app_dir asks settings() each time)
_app_paths: BoundedCache[tuple[str, str], Path] = BoundedCache(64)


def _describe(e: BaseException) -> str:
    if isinstance(e, SystemExit):
        return "its worker was stopped (SIGTERM or shutdown) while it ran"
    if isinstance(e, KeyboardInterrupt):
        return "interrupted"
    text = str(e) or type(e).__name__
    return text if isinstance(e, Exception) and hasattr(e, "message") else f"{type(e).__name__}: {text}"
