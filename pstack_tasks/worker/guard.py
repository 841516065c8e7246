"""A running region's guard: what keeps a gang member honest beside its engine.

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

from pstack_tasks.config import settings
from pstack_tasks.exceptions import PstackError
from pstack_tasks.fleet import epoch, store
from pstack_tasks.fleet.causes import WORKER_LOST, Cause, record_first
from pstack_tasks.fleet.keys import Keys
from pstack_tasks.fleet.ledger import Ledger
from pstack_tasks.fleet.lifecycle import lost_regions
from pstack_tasks.fleet.scripts import FleetView
from pstack_tasks.worker.interruptions import RedisIdentity, TimeLimit
from pstack_tasks.worker.usage import engine_usage

logger = logging.getLogger(__name__)
BEAT_INTERVAL = 0.25
PEER_INTERVAL = 1.0
#: waiting processes a region's start names for its end's admission: the head of the waiting list
#: moves on while the region runs (a view the admission finds stale costs a second round trip)
VIEW_WINDOW = 8


def progress_text(counts: tuple[int, int]) -> str:
    """A region's live counters as ``Keys.progress`` keeps them: "<delivered> <steps>"."""
    return f"{counts[0]} {counts[1]}"


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
        self.clients: list[int] = []  # regions served by client engines (fleet/pyengine)
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
        self.on_tick: list[Callable[[], None]] = []  # more to do on each tick (worker/snapshot_port.py)
        self.run: int | None = None  # the run of the process this region takes part in (None: any)
        self.refusal: str | None = None  # why begin() did not take part
        self.view: FleetView | None = None  # the fleet as begin() saw it, for the region's end

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
        for extra in list(self.on_tick):
            extra()
        if os.getppid() != self.parent and not self._reason:
            self.fail(f"region {self.region}: the worker on {self.host} running it died", WORKER_LOST)
        if self.limit.exceeded() and not self._reason:
            self.fail(self.limit.reason(self.region, self.host))
        if time.monotonic() >= self._next_peer_check and not self._reason:
            self._next_peer_check = time.monotonic() + PEER_INTERVAL
            self._publish_usage()
            restart = self.redis_id.restart(self.r, self.keys) if self.redis_id else None
            if restart:
                self.stop_for(restart)
                return
            lost = lost_regions(self.r, self.keys, self.pid, self.regions, self.admitted,
                                self.cfg.start_timeout, exclude=self.region, clients=self.clients)
            if lost:
                self.fail(lost.text, lost.code)

    def begin(self, run: int | None = None, engine: str | None = None) -> dict[str, str]:
        """Take part in run ``run`` (None: any) of the process if that is the run it is on and it is
        Running: the first heartbeat and "started" set in the same step (``region_begin.lua``), then
        beat on in the background.  Returns the record; ``refusal`` says why a task does not take
        part (nothing was started, nothing of the process touched).  With ``engine``, the fleet
        view the region's end needs is read in the same round trip.  Peers are first looked at one
        interval later: at the start they may not have begun yet, and the reaper watches anyway."""
        ledger = Ledger.of(self.r, self.keys)

        def steps(pipe: Pipeline) -> None:
            ledger.region_begin(pipe, self.pid, self.region, run, self.host, self.cfg.heartbeat_ttl)
            RedisIdentity.ask(pipe, self.keys)
            if engine:
                ledger.ask_view(pipe, engine, VIEW_WINDOW)
        replies = ledger.transaction(steps, raise_on_error=False, atomic=False)  # one script, and reads
        for x in replies[:3]:
            if isinstance(x, Exception):
                raise x
        (begun, *reply), stack_id, server, *view = replies
        if not int(begun):
            state, current = reply
            self.refusal = (f"region {self.region} of process {self.pid}: a task of run {run}, but the process is on "
                            f"run {current or '?'} (restarted or recovered): it does not take part"
                            if state == "Running" else f"region {self.pid}/{self.region}: the process is "
                            f"{state or 'gone'}; nothing to do")
            return {"state": state, "run": current}
        abort, flat = reply
        rec: dict[str, str] = dict(zip(flat[::2], flat[1::2]))
        if engine and not isinstance(view[0], Exception):
            self.view = ledger.view_of(engine, view[0], view[1], VIEW_WINDOW)
        self.run = run
        self.regions = json.loads(rec["regions"])
        self.clients = json.loads(rec.get("client_regions") or "[]")
        self.app_file = rec.get("file") or "app.xml"
        self.admitted = float(rec.get("started") or time.time())
        self.verbose = rec.get("verbose") == "1"
        self.limit = TimeLimit.of(json.loads(rec.get("options") or "{}"), time.monotonic())
        self.redis_id = RedisIdentity.of(stack_id, server)
        if abort:
            self._reason = abort
        self._next_peer_check = time.monotonic() + PEER_INTERVAL
        self.next_tick = time.monotonic() + BEAT_INTERVAL
        _Ticker.add(self)
        return rec

    def fail(self, cause: str, error: str | None = None) -> None:
        """Record the first cause of the process's failure and stop this region.

        ``error`` names the project exception class of the cause, its code (fleet/causes.py): the
        first one goes into the process record with it, so a client's ProcessFailed exits with
        that family's status, and a lost worker (``WorkerLost``) is recovered from."""
        self._reason = record_first(self.r, self.keys, self.pid, Cause(cause, error)) or cause

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
            pipe.hset(key, str(self.region), progress_text(counts))
            pipe.expire(key, self.cfg.result_expires)

    def _publish_usage(self) -> None:
        """The engine's memory and CPU seconds for ``status`` (once a second, with the peer check)."""
        usage = engine_usage()
        if usage is not None:
            key = self.keys.usage(self.pid)
            pipe = self.r.pipeline(transaction=False)
            pipe.hset(key, str(self.region), f"{usage[0]} {usage[1]}")
            pipe.expire(key, self.cfg.result_expires)
            pipe.execute()

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


def error_code(e: BaseException) -> str | None:
    """The code (fleet/causes.py) of a region's own failure ``e``: its project exception class, or
    ``WorkerLost`` when its worker was stopped under it (a warm shutdown's SystemExit)."""
    if isinstance(e, SystemExit):
        return WORKER_LOST
    return type(e).__name__ if isinstance(e, PstackError) else None
