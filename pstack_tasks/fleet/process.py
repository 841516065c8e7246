"""Processes: an application run on the worker fleet, with a pid, a record, and an end.

``run`` parses the application here (so a bad file fails before anything is queued),
stores it in Redis once per content hash, writes the process record, and queues the
process for slots (:mod:`ledger`).  When its whole gang fits, :func:`dispatch` sends one
``pstack.region`` task per region to the queue of the worker holding its slot, with the
``pstack.merge`` chord callback on the control queue.  The record, not Celery, says how
a process ended: the merge writes Done; the last region of a failed or killed process
writes Failed or Killed with the first cause; the reaper ends processes whose workers
vanished (a chord never completes then).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from pstack_tasks import engine as engine_registry
from pstack_tasks.config import mask_url, settings
from pstack_tasks.exceptions import ConfigurationError, GraphError, ProcessFailed, ProcessRefused, RedisUnavailable
from pstack_tasks.fleet import store
from pstack_tasks.fleet.ledger import Admitted, Ledger
from pstack_tasks.fleet.store import Keys
from pstack_tasks.fleet.users import check_may_kill, current_user
from pstack_tasks.graph import loader
from pstack_tasks.memo import BoundedCache

logger = logging.getLogger(__name__)
ENDED = ("Done", "Failed", "Killed")


def _ledger() -> tuple[Any, Keys, Ledger]:
    keys, r = Keys.current(), store.client()
    return r, keys, Ledger.of(r, keys)


@dataclass(frozen=True)
class Future:
    """A submitted process: ``.pid`` now, the result from :func:`block` (or ``.result()``)."""

    pid: int

    def state(self) -> str:
        return status(self.pid).get("state", "Unknown")

    def done(self) -> bool:
        return self.state() in ENDED

    def result(self, timeout: float | None = None) -> dict[str, Any]:
        return block(self, timeout=timeout)


def _read_app(xml: str | bytes | os.PathLike[str]) -> tuple[str, str | None]:
    """(text, file name) of an application given as a path, or (text, None) as XML text."""
    if isinstance(xml, bytes):
        return xml.decode(), None
    text = str(xml)
    if text.lstrip().startswith("<"):
        return text, None
    path = Path(text)
    try:
        return path.read_text(), str(path)
    except OSError as e:
        raise GraphError(f"cannot read the file: {e.strerror}", text) from None


def _parsed(text: str, file: str | None, digest: str) -> loader.Application:
    """The application parsed, kept for the next submission of the same text (a client often
    runs one application many times; the parse is most of what a submission costs here)."""
    key = (digest, file)
    app = _parsed_apps.get(key)
    if app is None:
        app = loader.load(file if file is not None else text.encode())
        if app.worth_keeping():
            _parsed_apps.put(key, app)
    return app


#: applications kept parsed by a client (small ones: Application.worth_keeping)
_parsed_apps: BoundedCache[tuple[str, str | None], loader.Application] = BoundedCache(8)


def run(xml: str | bytes | os.PathLike[str], rmap: Mapping[str, int] | None = None,
        rcon: Mapping[int | str, str] | None = None, level: int = 1, verbose: bool = False,
        async_: bool = False, engine: str | None = None, options: Mapping[str, Any] | None = None,
        timeout: float | None = None, progress: Callable[[dict[str, Any]], None] | None = None
        ) -> dict[str, Any] | Future:
    """Run an application on the fleet as a new process (pstack's ``run``).

    Args:
        xml: the application file's path, or its XML text.
        rmap: region map ``{device: region}``; unmapped devices are in region 0. Each region
            runs as one task on a worker of the engine type, all at the same time.
        rcon: pin regions to named workers ``{region: host}``.
        level: handler_log level shown by ``verbose``.
        verbose: stream ``[host] Region r -> line`` log lines here while it runs.
        async_: return a :class:`Future` at once instead of waiting.
        engine: engine type (default ``PSTACK_ENGINE``, ``psim``).
        options: passed to the engine's ``run_engine`` (``max_steps``, ``time_limit``, ...).
        timeout: with ``async_=False``, give up waiting after this many seconds.
        progress: with ``async_=False``, receives the process's :func:`status` a few times a
            second while it waits (``delivered``: messages delivered so far).

    Returns:
        the merged result ``{"states", "metrics", "regions", "pid"}``, or a Future.

    Raises:
        GraphError: the file is malformed; nothing was queued.
        ProcessRefused: the fleet can never run it (the message gives needed/available).
        ProcessFailed: it ended Failed or Killed (``.reason`` names the first cause).
    """
    cfg = settings()
    engine = engine or cfg.engine
    engine_registry.load(engine)  # unknown engine types fail here, not on a worker
    text, file = _read_app(xml)
    digest = hashlib.sha256(text.encode()).hexdigest()
    app = _parsed(text, file, digest)
    _, regions = loader.region_array(app.instance, rmap, file)
    pins = {str(k): str(v) for k, v in (rcon or {}).items()}
    for k in pins:
        if not k.isdigit() or int(k) not in regions:
            raise ConfigurationError(f"rcon pins region {k!r}, but the regions in use are {regions}")
    with store.reporting():  # a wrong password or a read-only Redis user: say so, no traceback
        r, keys, ledger = _ledger()
        pipe = r.pipeline(transaction=False)
        pipe.set(keys.app(digest), text, ex=cfg.result_expires)
        pipe.incr(keys.next_pid)
        try:
            pid = int(pipe.execute()[1])
        except redis.exceptions.NoPermissionError:
            raise
        except redis.ResponseError as e:  # LOADING, MISCONF, ...: up, but not usable
            raise RedisUnavailable(f"Redis at {mask_url(store.redis_url())} cannot serve the stack: {e}") from None
        record = {
            "pid": pid, "user": current_user(), "graph_type": app.graph_type.id, "instance": app.instance.id,
            "devices": app.instance.device_count, "edges": app.instance.edge_count, "engine": engine,
            "regions": json.dumps(regions), "nregions": len(regions), "rmap": json.dumps(dict(rmap or {})),
            "rcon": json.dumps(pins), "file": file or "app.xml", "app": digest, "level": int(level),
            "verbose": int(bool(verbose)), "options": json.dumps(dict(options or {})),
            "submitted": f"{time.time():.3f}", "state": "Submitted",
        }

        def steps(pipe: Any) -> None:
            pipe.hset(keys.proc(pid), mapping=record)
            pipe.zadd(keys.procs, {str(pid): pid})
            ledger.submit_and_admit(pipe, engine, pid)
        *_, (ok, refusal), admitted = ledger.transaction(steps)
        if not int(ok):
            ledger.finish(pid, "Failed", f"refused: {refusal}", cfg.result_expires)
        start(engine, ledger.admitted(admitted))  # others may have been admitted, refused or not
        if not int(ok):
            raise ProcessRefused(f"process {pid} refused: {refusal}")
    future = Future(pid)
    if async_:
        return future
    result: dict[str, Any] = block(future, timeout=timeout, progress=progress)
    if "states" in result:  # in device order, as psim reports them
        states = result["states"]
        result["states"] = {n: states[n] for n in app.instance.names if n in states}
    return result


def pump(engine: str) -> None:
    """Start every waiting process of this engine type that fits now (call when slots free up)."""
    _, _, ledger = _ledger()
    start(engine, ledger.admit(engine))


def start(engine: str, admitted: Iterable[Admitted]) -> None:
    """Dispatch processes the ledger admitted; one the broker refuses ends Failed (slots freed)."""
    for process in admitted:
        try:
            dispatch(engine, process)
        except Exception as e:  # the broker refused: end it rather than leave it holding slots
            logger.exception("dispatching process %s failed", process.pid)
            _end(process.pid, "Failed", f"could not dispatch: {e}")


def lost_regions(r: Any, keys: Keys, pid: int, regions: list[int], admitted: float, start_timeout: float,
                 exclude: int | None = None) -> str | None:
    """Why a region of the process is gone, if one is: heartbeat expired, or never started."""
    others = [x for x in regions if x != exclude]
    pipe = r.pipeline(transaction=False)
    pipe.smembers(keys.ended(pid))
    pipe.smembers(keys.started(pid))
    pipe.hgetall(keys.lease(pid))
    for x in others:
        pipe.exists(keys.beat(pid, x))
    ended, started, lease, *beats = pipe.execute()
    for x, beat in zip(others, beats):
        if beat or str(x) in ended:
            continue
        host = (lease.get(str(x)) or "?|").split("|")[0]
        if str(x) in started:
            return f"region {x} on {host} stopped responding (its worker was lost)"
        if time.time() - admitted > start_timeout:
            return f"region {x} never started on {host} within {start_timeout:g} s (is that worker running?)"
    return None


def dispatch(engine: str, process: Admitted) -> None:
    """Send the regions of an admitted process to their workers, merge on the control queue.

    The ledger has already emptied its message queues and set ``<pid>.active`` when it
    admitted it.
    """
    from celery import chord

    from pstack_tasks.celery_app import app
    pid, graph, regions = process.pid, process.graph_type, process.regions
    header = [app.signature("pstack.region", (pid, x), queue=f"engine.{engine}.{process.hosts[str(x)]}",
                               shadow=f"{graph}:{pid}/r{x}",
                               argsrepr=f"(pid={pid}, region={x}/{len(regions)}, graph={graph})")
              for x in regions]
    body = app.signature("pstack.merge", (pid,), queue="control", shadow=f"{graph}:{pid}/merge")
    _no_result_subscriptions()
    chord(header)(body)


def _no_result_subscriptions() -> None:
    """We wait on our own record, never on Celery's results: tell Celery not to subscribe to
    them (as inside a worker).  AsyncResult.__del__ would still reconnect to Redis to
    unsubscribe from nothing whenever one is collected (noise at exit, stray sockets)."""
    from celery import _state
    from celery.result import AsyncResult
    _state._set_task_join_will_block(True)
    AsyncResult.__del__ = lambda self: None  # type: ignore[method-assign]


def after_region(pid: int, engine: str, aborted: bool, regions: int, admitted: list[Admitted]) -> None:
    """A region ended (its slot already given back, ``admitted`` started by that): dispatch them,
    and end a failed process once all its regions are down."""
    start(engine, admitted)
    if aborted:
        r, keys, _ = _ledger()
        pipe = r.pipeline()
        pipe.get(keys.abort(pid))
        pipe.scard(keys.ended(pid))
        abort, ended = pipe.execute()
        if abort and int(ended) >= regions:
            _end(pid, None, abort)


def _end(pid: int, state: str | None, reason: str, result: dict[str, Any] | None = None) -> bool:
    """End a process (the first ending wins), free its slots and message queues, start what fits."""
    _, _, ledger = _ledger()
    ending = ledger.end(pid, state, reason, result)
    if ending is None:
        return False
    if ending.ended:
        logger.info("process %s %s: %s", pid, ending.state, reason)
    start(ending.engine, ending.admitted)
    return ending.ended


def merge_parts(pid: int, parts: Sequence[Mapping[str, Any]]) -> None:
    """The chord callback's work: merge the regions' results and end the process Done."""
    from pstack_tasks.native.results import merge_results
    if any(p.get("stale") for p in parts):
        return
    result = merge_results({int(p["region"]): p for p in parts})
    result["pid"] = pid
    result["hosts"] = {str(p["region"]): p.get("host") for p in parts}
    code = result["metrics"].get("Exit code", 0)
    _end(pid, "Done", f"exit code {code} ({result['metrics'].get('Exit reason', '')})", result)


def reap(pid: int) -> str | None:
    """End a running process whose regions are gone without ending it (host lost).

    Called by the control worker for every running process, and by ``block`` for its own.
    Returns the reason if it ended the process.
    """
    r, keys, ledger = _ledger()
    rec = r.hgetall(keys.proc(pid))
    if rec.get("state") != "Running":
        return None
    regions = json.loads(rec["regions"])
    cfg = settings()
    lost = lost_regions(r, keys, pid, regions, float(rec.get("started") or 0), cfg.start_timeout)
    abort = r.get(keys.abort(pid))
    if lost and not abort:
        r.set(keys.abort(pid), lost, nx=True, ex=cfg.result_expires)
        abort = r.get(keys.abort(pid))
    if not abort:
        return None
    # Aborted: wait until no unfinished region still beats (they stop within a second), then end it.
    ended = r.smembers(keys.ended(pid))
    pipe = r.pipeline(transaction=False)
    for x in regions:
        if str(x) not in ended:
            pipe.exists(keys.beat(pid, x))
    if any(pipe.execute()):
        return None
    if _end(pid, None, abort):
        return abort
    return None


def reap_all() -> list[int]:
    """Reap every running process; the pids that were ended."""
    r, keys, _ = _ledger()
    ended = []
    for pid in sorted(int(p) for p in r.smembers(keys.running)):
        if reap(pid):
            ended.append(pid)
        elif not r.exists(keys.proc(pid)):
            r.srem(keys.running, pid)
    return ended


def _recent_pids(r: Any, keys: Keys, limit: int) -> list[int]:
    return [int(p) for p in r.zrevrange(keys.procs, 0, limit - 1)]


def block(futures: Future | int | Iterable[Future | int], timeout: float | None = None,
          sink: Callable[[str], None] | None = None,
          progress: Callable[[dict[str, Any]], None] | None = None) -> Any:
    """Wait for one process (or each of a list) to end; its result, or a list of results.

    Verbose processes stream their log lines to ``sink`` (default: stdout) meanwhile.
    ``progress``, if given, receives the process's :func:`status` about four times a second
    (``delivered`` grows as the engines run).

    Raises:
        ProcessFailed: a process ended Failed or Killed.
        TimeoutError: ``timeout`` seconds passed first (the process goes on).
    """
    if isinstance(futures, (Future, int)):
        return _block_one(futures if isinstance(futures, int) else futures.pid, timeout, sink, progress)
    deadline = None if timeout is None else time.monotonic() + timeout
    out = []
    for f in futures:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        out.append(_block_one(f if isinstance(f, int) else f.pid, left, sink, progress))
    return out


def _block_one(pid: int, timeout: float | None, sink: Callable[[str], None] | None,
               progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    r, keys, _ = _ledger()
    deadline = None if timeout is None else time.monotonic() + timeout
    verbose: bool | None = None  # known from the first read of the record
    emit = sink or (lambda line: print(line, flush=True))
    log_pos = "0-0"
    next_reap = time.monotonic() + 1.0
    while True:
        rec = r.hgetall(keys.proc(pid))
        if not rec:
            raise ConfigurationError(f"no process {pid} (unknown, or its record has expired)")
        if verbose is None:
            verbose = rec.get("verbose") == "1"
        if rec["state"] in ENDED:
            if verbose:
                log_pos = _drain_log(r, keys, pid, log_pos, emit, 0)
            return _outcome(r, keys, pid, rec)
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"process {pid} is still {rec['state']} after {timeout:g} s")
        if progress is not None:
            progress(_describe(rec, r.hgetall(keys.progress(pid))))
        if verbose:
            log_pos = _drain_log(r, keys, pid, log_pos, emit, 200)
        else:
            r.blmove(keys.wake(pid), keys.wake(pid), 0.25 if progress else 0.5, "LEFT", "LEFT")
        if time.monotonic() >= next_reap:
            next_reap = time.monotonic() + 1.0
            reap(pid)


def _drain_log(r: Any, keys: Keys, pid: int, pos: str, emit: Callable[[str], None], block_ms: int) -> str:
    got = r.xread({keys.log(pid): pos}, count=1000, block=block_ms or None)
    for _, entries in got or []:
        for entry_id, fields in entries:
            emit(fields.get("l", ""))
            pos = entry_id
    return pos


def _outcome(r: Any, keys: Keys, pid: int, rec: Mapping[str, str]) -> dict[str, Any]:
    if rec["state"] != "Done":
        raise ProcessFailed(pid, rec["state"], rec.get("reason", ""), rec.get("error"))
    result = read_result(pid, r, keys)
    if result is None:
        raise ConfigurationError(f"the result of process {pid} has expired")
    return result


def read_result(pid: int, r: Any = None, keys: Keys | None = None) -> dict[str, Any] | None:
    """The merged result of a Done process (None once it has expired)."""
    r, keys = r or store.client(), keys or Keys.current()
    raw = r.get(keys.result(pid))
    return None if raw is None else json.loads(raw)  # type: ignore[no-any-return]


def status(pid: int) -> dict[str, Any]:
    """The record of one process (empty if unknown or expired), with its live counters."""
    r, keys, _ = _ledger()
    pipe = r.pipeline(transaction=False)
    pipe.hgetall(keys.proc(pid))
    pipe.hgetall(keys.progress(pid))
    return _describe(*pipe.execute())


def _describe(rec: Mapping[str, str], progress: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A process record as the API shows it; ``progress`` is the regions' live counters."""
    if not rec:
        return {}
    out: dict[str, Any] = {
        "pid": int(rec["pid"]), "state": rec.get("state"), "user": rec.get("user"),
        "graph_type": rec.get("graph_type"), "engine": rec.get("engine"),
        "devices": int(rec.get("devices", 0)), "edges": int(rec.get("edges", 0)),
        "regions": json.loads(rec.get("regions", "[]")), "rmap": json.loads(rec.get("rmap", "{}")),
        "rcon": json.loads(rec.get("rcon", "{}")), "hosts": json.loads(rec.get("hosts", "{}")),
        "reason": rec.get("reason", ""), "file": rec.get("file"),
    }
    for t in ("submitted", "started", "ended"):
        out[t] = float(rec[t]) if rec.get(t) else None
    start = out["started"] or out["submitted"]
    out["elapsed"] = round((out["ended"] or time.time()) - start, 3) if start else None
    per_region = {}
    for region, counts in (progress or {}).items():
        delivered, _, steps = counts.partition(" ")
        per_region[int(region)] = {"delivered": int(delivered), "steps": int(steps or 0)}
    out["progress"] = dict(sorted(per_region.items()))
    out["delivered"] = sum(p["delivered"] for p in per_region.values())
    out["steps"] = sum(p["steps"] for p in per_region.values())
    return out


def ps(user: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
    """The most recent processes of every user (newest first), or only ``user``'s.

    Everyone sees every process, with its owner in ``user``, as pstack's ``ps`` showed them:
    a shared fleet is easier to share when you can see who is using it.
    """
    r, keys, _ = _ledger()
    with store.reporting():
        pids = _recent_pids(r, keys, limit)
        pipe = r.pipeline(transaction=False)
        for pid in pids:
            pipe.hgetall(keys.proc(pid))
            pipe.hgetall(keys.progress(pid))
        replies = pipe.execute()
    out, gone = [], []
    for pid, rec, progress in zip(pids, replies[::2], replies[1::2]):
        if not rec:
            gone.append(str(pid))
            continue
        d = _describe(rec, progress)
        if user and d["user"] != user:
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
        PermissionDenied: the process belongs to another user and the caller is no admin
            (nothing is changed), or the Redis user may not write.
    """
    r, keys, _ = _ledger()
    with store.reporting():
        return _kill(r, keys, pid, wait)


def _kill(r: Any, keys: Keys, pid: int, wait: float) -> str:
    rec = r.hgetall(keys.proc(pid))
    if not rec:
        raise ConfigurationError(f"no process {pid} (unknown, or its record has expired)")
    who = current_user()
    check_may_kill(pid, rec, who)
    if rec["state"] in ENDED:
        return rec["state"]
    r.hset(keys.proc(pid), "killed_by", who)
    reason = f"killed by {who}"
    r.set(keys.abort(pid), reason, nx=True, ex=settings().result_expires)
    if rec["state"] in ("Waiting", "Submitted"):
        r.lrem(keys.waiting(rec["engine"]), 0, str(pid))
        _end(pid, "Killed", reason)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        state = r.hget(keys.proc(pid), "state")
        if state in ENDED:
            return str(state)
        if state == "Waiting":  # it was Submitted above and has joined the queue since
            _end(pid, "Killed", reason)
        reap(pid)
        time.sleep(0.05)
    return str(r.hget(keys.proc(pid), "state"))


def engines() -> list[dict[str, Any]]:
    """Every registered engine worker: type, host, slots, busy slots, online."""
    _, _, ledger = _ledger()
    return ledger.fleet()
