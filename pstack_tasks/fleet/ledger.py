"""The slot ledger: gang scheduling done atomically in Redis.

Celery has no gang scheduling: a chord of N regions started with fewer than N free
slots deadlocks (docs/processes.md).  So every engine worker registers its slots
here, and a process is admitted only when *all* its regions can start now, in one
Lua script, so concurrent submitters can never split the fleet between them.
Admitted regions are routed to the queue of the worker that holds their slot.

Waiting processes are served round-robin per user, each user's first come first served, per
engine type, and only on workers that serve them (``pstack worker --group/--user``): whoever
frees slots (a region ending, a worker joining) calls :func:`admit` again.  The scripts are
in ``fleet/lua/`` and get every key through ``KEYS[]`` (:mod:`scripts`).
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from redis.client import Pipeline

from pstack_tasks.config import settings
from pstack_tasks.fleet.keys import Keys
from pstack_tasks.fleet.matching import EVERYONE, Serving
from pstack_tasks.fleet.scripts import CANDIDATES, LOOKAHEAD, Call, FleetView, source
from pstack_tasks.protocol import ExitReason, Metric


@dataclass(frozen=True)
class Admitted:
    """A process the ledger just started: where each region goes, and what the dispatch needs."""

    pid: int
    hosts: dict[str, str]
    regions: list[int]
    graph_type: str
    #: the run's generation: this admission's number (lib.lua start), carried by its region tasks
    run: int = 0


def _admitted(flat: list[Any]) -> list[Admitted]:
    return [Admitted(int(flat[i]), json.loads(flat[i + 1]), json.loads(flat[i + 2]), str(flat[i + 3]),
                     int(flat[i + 4])) for i in range(0, len(flat), 5)]


@dataclass(frozen=True)
class RegionEnded:
    """What a region's end did (``region_end.lua``'s reply): nothing at all if it was of another
    run (``stale``); else the process's abort reason ('' none), how many of its regions have
    ended, the reason it ended Done with if this end did (None: it did not), and the admission's
    reply (:meth:`Ledger.admitted`)."""

    stale: bool
    abort: str = ""
    ended: int = 0
    done: str | None = None
    admission: tuple[Any, ...] = (0,)

    @classmethod
    def of(cls, reply: list[Any]) -> RegionEnded:
        if int(reply[0]):
            return cls(True)
        return cls(False, str(reply[1] or ""), int(reply[2]), str(reply[4]) if int(reply[3]) else None,
                   tuple(reply[5:]))


@dataclass(frozen=True)
class WorkerEnd:
    """What a worker's region says with its end, beside its part (``region_end.lua``): its last
    counters ("delivered steps", or None), its exit text (``lifecycle.exit_text``, None: it has no
    result), every fleet region of its process, and whether client engines serve others."""

    counts: str | None
    exit: str | None
    regions: list[int]
    clients: bool


@dataclass(frozen=True)
class Ending:
    """What ending a process did: whether this call ended it, how, and who was admitted after."""

    ended: bool
    state: str
    engine: str
    admitted: list[Admitted]


class Ledger:
    """Slots of the fleet and the processes holding them, all changed by atomic scripts.

    Scripts go to Redis by SHA.  Inside a pipeline that skips redis-py's ``SCRIPT EXISTS``
    round trip per call; if Redis has lost them (restarted, ``SCRIPT FLUSH``), the pipeline
    runs again after loading them, which every caller's steps allow (each is idempotent).
    """

    def __init__(self, r: redis.Redis, keys: Keys) -> None:
        self.r = r
        self.keys = keys
        self._scripts = {name: r.register_script(source(name)) for name in _SCRIPTS}

    @classmethod
    def of(cls, r: redis.Redis, keys: Keys) -> Ledger:
        """The ledger of this client and key prefix, made once per process (scripts hashed once)."""
        key = (id(r), keys.prefix)
        hit = _ledgers.get(key)
        if hit is None or hit.r is not r:
            hit = _ledgers[key] = cls(r, keys)
        return hit

    def transaction(self, build: Callable[[Pipeline], None], raise_on_error: bool = True,
                    atomic: bool = True) -> list[Any]:
        """Run the steps ``build`` puts in a MULTI/EXEC pipeline; their replies (``raise_on_error``
        False: errors in place, as redis-py gives them).  ``atomic=False``: a plain pipeline (one
        round trip all the same), for steps that need no MULTI: one script, which Redis runs
        atomically anyway, or reads that may interleave with other clients' writes."""
        for attempt in (1, 2):
            pipe = self.r.pipeline(transaction=atomic)
            build(pipe)
            try:
                replies: list[Any] | None = pipe.execute(raise_on_error=raise_on_error)
            except redis.exceptions.NoScriptError:
                replies = None
            if replies is not None and not any(isinstance(x, redis.exceptions.NoScriptError) for x in replies):
                return replies
            if attempt == 2:
                raise redis.exceptions.NoScriptError("Redis does not keep the ledger's scripts")
            for script in self._scripts.values():
                self.r.script_load(script.script)
        raise AssertionError("unreachable")

    def call(self, pipe: Pipeline, name: str, call: Call) -> None:
        """In ``pipe``: run script ``name`` by SHA with the keys and arguments of ``call``."""
        pipe.evalsha(self._scripts[name].sha, len(call.keys), *call.keys, *call.args)

    def _run(self, name: str, call: Call) -> Any:
        return self._scripts[name](keys=call.keys, args=call.args)

    def view(self, engine: str, window: int = CANDIDATES) -> FleetView:
        """The registered hosts of an engine type and the first ``window`` processes of its waiting
        list, as they are now."""
        pipe = self.r.pipeline(transaction=False)
        self.ask_view(pipe, engine, window)
        hosts, waiting = pipe.execute(raise_on_error=False)
        return self.view_of(engine, hosts, waiting, window)

    def ask_view(self, pipe: Pipeline, engine: str, window: int = CANDIDATES) -> None:
        """In ``pipe``: the two reads of a :meth:`view` (a region's start sends them with its own)."""
        pipe.hkeys(self.keys.cap(engine))
        pipe.zrange(self.keys.waiting(engine), 0, window - 1)

    def view_of(self, engine: str, hosts: Any, waiting: Any, window: int = CANDIDATES) -> FleetView:
        """The view from the replies to :meth:`ask_view` (read with ``raise_on_error=False``)."""
        if isinstance(hosts, Exception):
            raise hosts
        if isinstance(waiting, redis.ResponseError):  # an older version's list: the scripts upgrade it
            waiting = self.r.lrange(self.keys.waiting(engine), 0, window - 1)
        return FleetView(engine, [str(h) for h in hosts], [str(p) for p in waiting])

    # processes
    def submit(self, engine: str, pid: int, before: Callable[[Pipeline], None]) -> tuple[str | None, list[Admitted]]:
        """In one transaction: the steps of ``before`` (the process record), the process queued
        for slots, and every waiting process that fits now admitted, this one included if it does.

        Returns the reason it can never run (None: it waits or runs), and the admitted processes.
        """
        view = self.view(engine)

        def steps(pipe: Pipeline) -> None:
            before(pipe)
            self.call(pipe, "submit", self._submit_call(engine, pid, view))
            self.call(pipe, "admit", Call().arg(_now(), _ttl()).fleet(self.keys, view)
                      .admission(self.keys, view, also=pid))
        *_, (ok, refusal), reply = self.transaction(steps)
        admitted = self.admitted(engine, reply)
        while int(ok) < 0:  # a worker registered meanwhile: queue it alone, then admit again
            ok, refusal = self._run("submit", self._submit_call(engine, pid, self.view(engine)))
            if int(ok) > 0:
                admitted += self.admit(engine)
        return (None if int(ok) else str(refusal)), admitted

    def _submit_call(self, engine: str, pid: int, view: FleetView) -> Call:
        return (Call().key(self.keys.proc(pid), self.keys.waiting(engine), self.keys.fair(engine)).arg(engine)
                .fleet(self.keys, view))

    def admit(self, engine: str) -> list[Admitted]:
        """Admit every waiting process whose whole gang fits now, in turn.  The script looks at the
        processes this call names; when it needs more (the first ones wait for busy hosts while
        others are free), the next call names twice as many, up to :data:`LOOKAHEAD`."""
        out: list[Admitted] = []
        window, more = CANDIDATES, 1
        while more:
            view = self.view(engine, window)
            reply = self._run("admit", Call().arg(_now(), _ttl()).fleet(self.keys, view).admission(self.keys, view))
            more = int(reply[0])
            out += _admitted(reply[1:])
            if more == _NAME_MORE:
                if window >= LOOKAHEAD:
                    break
                window = min(LOOKAHEAD, window * 2)
        return out

    def unqueue(self, engine: str, pid: int) -> None:
        """Take a process off the waiting list (killed while waiting); nothing if it is not on it."""
        k = self.keys
        self._run("unqueue", Call().key(k.proc(pid), k.waiting(engine), k.fair(engine)).arg(pid))

    def region_end(self, pipe: Pipeline, view: FleetView, pid: int, region: int, regions: list[int],
                   part: str | None, run: int | None = None, worker: WorkerEnd | None = None) -> None:
        """In ``pipe``: a region's end in the ledger (reply: ``region_end.lua``; :meth:`admitted`
        takes its admission part).  Its ``part`` of the result is stored only if the process is
        still Running; if it is not, the process's engine keys (``regions``: all its regions) are
        deleted; then its slot goes back and what fits now is admitted.  ``worker``: a worker's
        region also says there that it ended, and the last one ends its process Done.  ``run``: the
        run the region belongs to (None: any); the end of another run changes nothing.  Call it only
        once the region's engine can send nothing more (worker/region.py ``_end_region`` says why
        that leaves no engine key behind).  ``view``: :meth:`view` of the process's engine type."""
        k = self.keys
        engine_keys = k.queues(pid).all(regions)
        call = (Call().key(k.lease(pid)).arg(region, _now(), _ttl(), "" if run is None else run)
                .key(k.proc(pid), k.result(pid)).arg(part or "", len(engine_keys)).key(*engine_keys))
        call.arg("1" if worker else "0")
        if worker is not None:
            call.key(k.progress(pid), k.exits(pid), k.beat(pid, region)).finish(k, pid)
            call.arg(pid, worker.counts or "", worker.exit or "", json.dumps(worker.regions), int(worker.clients),
                     json.dumps(list(ExitReason.FOLLOWED)), Metric.EXIT_CODE, Metric.EXIT_REASON, ExitReason.QUIESCENCE)
        self.call(pipe, "region_end", call.fleet(k, view).admission(k, view))

    def region_begin(self, pipe: Pipeline, pid: int, region: int, run: int | None, host: str, ttl: float) -> None:
        """In ``pipe``: a region begins (``region_begin.lua``): only in its process's current run
        (``run``; None: any) while it is Running, its first heartbeat and "started" then set."""
        k = self.keys
        call = (Call().key(k.proc(pid), k.beat(pid, region), k.started(pid), k.abort(pid))
                .arg(region, "" if run is None else run, host, int(ttl * 1000), _ttl()))
        self.call(pipe, "region_begin", call)

    def admitted(self, engine: str, reply: list[Any] | tuple[Any, ...]) -> list[Admitted]:
        """The processes an admission in a transaction admitted, and those admitted after it if it
        could not see the whole waiting list."""
        out = _admitted(list(reply[1:]))
        return out + self.admit(engine) if int(reply[0]) else out

    def finish(self, pid: int, state: str, reason: str) -> bool:
        """End a process that holds no slots (first ending wins); True if this call ended it."""
        call = Call().arg(pid, state, reason, _now(), _ttl()).finish(self.keys, pid)
        return bool(self._run("finish", call))

    def end(self, pid: int, state: str | None, reason: str) -> Ending | None:
        """End the process (first ending wins; ``state`` None: Killed if someone killed it, else
        Failed), free its slots and message queues, and admit what fits now.  None: no such process."""
        engine, regions, clients = self.r.hmget(self.keys.proc(pid), ["engine", "regions", "client_regions"])
        if engine is None:
            return None
        engine = str(engine)
        engine_keys = self.keys.queues(pid).all(json.loads(regions or "[]") + json.loads(clients or "[]"))
        view = self.view(engine)
        call = (Call().arg(pid, state or "", reason, _now(), _ttl()).finish(self.keys, pid)
                .key(self.keys.lease(pid)).arg(len(engine_keys)).key(*engine_keys)
                .fleet(self.keys, view).admission(self.keys, view))
        reply = self.transaction(lambda pipe: self.call(pipe, "end", call))[0]
        if int(reply[0]) < 0:
            return None
        return Ending(bool(int(reply[0])), str(reply[1]), engine, self.admitted(engine, reply[2:]))

    # workers
    def register(self, engine: str, host: str, slots: int, epoch: str, ttl: float, info: dict[str, Any],
                 serving: Serving = EVERYONE) -> bool:
        """Register a worker's slots, and whom it serves; False if another live worker holds the
        name (nothing changed)."""
        k = self.keys
        rule = json.dumps(serving.as_dict()) if serving.restricted else ""
        return bool(self._run("register", Call().key(k.engine_types, k.cap(engine), k.used(engine), k.info(engine),
                                         k.epoch(engine, host), k.alive(engine, host), k.serves(engine))
                  .arg(engine, host, slots, epoch, int(ttl * 1000), json.dumps(info), rule)))

    def beat(self, engine: str, host: str, epoch: str, ttl: float) -> bool:
        k = self.keys
        call = Call().key(k.epoch(engine, host), k.cap(engine), k.alive(engine, host)).arg(host, epoch, int(ttl * 1000))
        return bool(self._run("beat", call))

    def unregister(self, engine: str, host: str, epoch: str) -> None:
        k = self.keys
        self._run("unregister", Call().key(k.epoch(engine, host), k.cap(engine), k.used(engine), k.info(engine),
                                           k.alive(engine, host), k.serves(engine)).arg(host, epoch))

    def holder(self, engine: str, host: str) -> dict[str, Any] | None:
        """The live worker registered as ``<engine>@<host>`` (its info), or None."""
        pipe = self.r.pipeline(transaction=False)
        pipe.exists(self.keys.alive(engine, host))
        pipe.hget(self.keys.info(engine), host)
        alive, info = pipe.execute()
        return dict(json.loads(info or "{}")) if alive else None

    def fleet(self) -> list[dict[str, Any]]:
        """Every registered worker: engine type, host, slots, busy slots, alive."""
        out = []
        for engine in sorted(str(e) for e in self.r.smembers(self.keys.engine_types)):
            cap = self.r.hgetall(self.keys.cap(engine))
            used = self.r.hgetall(self.keys.used(engine))
            info = self.r.hgetall(self.keys.info(engine))
            for host in sorted(str(h) for h in cap):
                alive = bool(self.r.exists(self.keys.alive(engine, host)))
                out.append({"engine": engine, "host": host, "slots": int(cap[host]),
                            "busy": int(used.get(host, 0)), "alive": alive,
                            **json.loads(info.get(host, "{}"))})
        return out


_SCRIPTS = ("submit", "admit", "region_begin", "region_end", "finish", "end", "register", "beat", "unregister",
            "unqueue")
#: an admission's reply: it reached a waiting process the caller did not name (lib.lua admit)
_NAME_MORE = 2
_ledgers: dict[tuple[int, str], Ledger] = {}


def _now() -> str:
    return f"{time.time():.3f}"


def _ttl() -> int:
    return settings().result_expires
