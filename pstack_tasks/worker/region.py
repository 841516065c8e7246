"""One region of a process, as a worker runs it: the body of the ``pstack.region`` task.

The region begins under a :class:`~pstack_tasks.worker.guard.Guard` (heartbeat, abort flag,
peers), runs its engine, and ends in one transaction (:func:`_end_region`): its part of the
result, its slot back, and, when its process has already ended, its process's engine keys gone.
The region whose end finds every region ended ends its process Done (there is no chord).
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pstack_tasks import engine as engine_registry
from pstack_tasks.exceptions import EngineError, RegionStopped
from pstack_tasks.fleet import epoch, store
from pstack_tasks.fleet.causes import WORKER_LOST
from pstack_tasks.fleet.keys import Keys
from pstack_tasks.fleet.ledger import Ledger, RegionEnded, WorkerEnd
from pstack_tasks.fleet.lifecycle import after_region, exit_text, finish_when_ended
from pstack_tasks.fleet.records import part_text
from pstack_tasks.memo import BoundedCache
from pstack_tasks.native import build
from pstack_tasks.worker.checkpointer import checkpoints_while
from pstack_tasks.worker.guard import Guard, error_code, progress_text
from pstack_tasks.worker.resume import resume_file
from pstack_tasks.worker.snapshot_port import one_region_snapshots

logger = logging.getLogger(__name__)



def run_region(pid: int, region: int, host: str, on_progress: Callable[[int, int], object] | None = None,
               run: int | None = None, engine: str | None = None) -> dict[str, Any]:
    """Run one region of run ``run`` of process ``pid`` here (None: whatever run it is on) and
    store its part of the result in Redis.

    Returns the task's result: ``{"region", "host", "metrics"}`` (the states stay in Redis,
    written once), or ``{"region", "stale": True}`` if the process had already ended or is on
    another run (restarted or recovered since the task was sent: docs/persistence.md, "Runs").
    ``engine``: the process's engine type, as its dispatch named it (the fleet view the end needs
    is then read with the start).  ``on_progress(delivered, steps)`` is called from the guard
    thread about every 0.25 s while the engine runs (the counters also go to Redis for
    ``status``/``ps``/``top``).
    """
    guard = Guard(pid, region, host, on_progress)
    rec = guard.begin(run, engine)
    if guard.refusal is not None:
        logger.info("%s", guard.refusal)
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
    with resume_file(pid, rec) as resume, checkpoints_while(pid, guard.region, rec), \
            one_region_snapshots(guard, rec["engine"]) as snapshots:  # docs/persistence.md
        if resume is not None:
            options["resume"] = str(resume)
        if snapshots is not None:
            options["snapshot_dir"] = str(snapshots)
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
        guard.fail(cause, WORKER_LOST)
    if cause is None:
        cause = f"region {guard.region} on {guard.host}: {_describe(e)}"
        if guard.app_path is not None:  # name the user's file, not this host's copy of it
            cause = cause.replace(str(guard.app_path), guard.app_file)
        guard.fail(cause, error_code(e))
    return cause


def _end_region(guard: Guard, engine_type: str, part: dict[str, Any] | None) -> None:
    """The region is over: in one step (the ledger's ``region_end`` script) its last counters,
    "ended", its heartbeat gone, its part of the result kept if the process still runs, the
    process's engine keys deleted if it does not, the process ended Done if this was its last
    region and none failed, its slot back and the next waiting processes admitted; then those are
    started.  An end of a run before a restart or recovery changes nothing of the process.

    Why no engine key (``q:<pid>.*``) of an ended process survives, however a kill and the
    engines' writes interleave: this runs only once the region's engine can change Redis no
    more.  The engine is dead, and its relay was kept after a clean end (the engine had read
    every reply it was owed, so all it sent has run) or severed (``CLIENT KILL`` of its
    connection: what was still in socat or a socket buffer is dropped, never run later;
    native/relay.py).  A process's engine keys are deleted by its ending (the ledger's ``end``
    script) and by every region end that finds it no longer Running.  Redis runs these one at a
    time; the last of them comes at or after the ending, so it deletes the keys, and after it no
    engine of the process can write: every region that ran an engine has ended, and a region
    whose task begins after the ending finds the process not Running and starts none.  Likewise
    a part is stored only while the process is Running: the ending deletes the parts of a
    process that did not end Done, and no later region end writes one.  (A region whose worker
    died has no end: its engine dies with the worker and its socat delivers what it holds at
    once, while the reaper ends the process only after the region's heartbeat expired.)
    """
    pid, region, keys = guard.pid, guard.region, guard.keys
    ledger = Ledger.of(guard.r, keys)
    counts = guard.halt()
    view = guard.view or ledger.view(engine_type)
    said = WorkerEnd(None if counts is None else progress_text(counts),
                     None if part is None else exit_text(part.get("metrics", {})), guard.regions, bool(guard.clients))
    text = None if part is None else part_text(part)
    ended = RegionEnded.of(ledger.transaction(lambda pipe: ledger.region_end(  # one script: atomic as it is
        pipe, view, pid, region, guard.regions, text, guard.run, said), atomic=False)[0])
    if ended.stale:
        logger.info("region %s/%s of run %s: the process is on another run now; its end changed nothing",
                    pid, region, guard.run)
        return
    if ended.done is not None:
        logger.info("process %s Done: %s", pid, ended.done)
    after_region(pid, engine_type, aborted=bool(ended.abort), regions=len(guard.regions),
                 admitted=ledger.admitted(engine_type, ended.admission))
    if guard.clients and ended.ended >= len(guard.regions) and not ended.abort and part is not None:
        finish_when_ended(pid)  # regions served by client engines: the last of those may end it


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
