"""Creating a process: the application read and parsed here (a bad file fails before anything is
queued), its text stored once per content hash, the process record written, and the process
queued for slots in the same transaction (:meth:`Ledger.submit`).
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from array import array
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from redis.client import Pipeline

from pstack_tasks import engine as engine_registry
from pstack_tasks.config import mask_url, settings
from pstack_tasks.exceptions import ConfigurationError, GraphError, ProcessRefused, RedisUnavailable
from pstack_tasks.fleet import epoch, store
from pstack_tasks.fleet.dispatch import ledger, start
from pstack_tasks.fleet.keys import Keys
from pstack_tasks.fleet.matching import process_group
from pstack_tasks.fleet.persistence.barrier import ONE_REGION_ENGINE
from pstack_tasks.fleet.served import Rcon, check_served
from pstack_tasks.fleet.users import current_user
from pstack_tasks.graph import loader, overrides
from pstack_tasks.graph.app_file import read_text, xml_bytes
from pstack_tasks.graph.partition import combine
from pstack_tasks.memo import BoundedCache
from pstack_tasks.native.split_cache import RegionMap, resolve, split_digest

Application = str | bytes | os.PathLike[str]


@dataclass(frozen=True)
class Request:
    """What a client asks for: the process's arguments as :func:`client.submit` takes them."""

    xml: Application
    rmap: RegionMap = None
    rcon: Rcon | None = None
    level: int = 1
    verbose: bool = False
    engine: str | None = None
    options: Mapping[str, Any] | None = None
    regions: int | None = None
    #: the process's group (None: ``PSTACK_GROUP``); workers started with ``--group`` serve only theirs
    group: str | None = None
    overrides: Mapping[str, Any] | None = None  # {key: value} patched into this run's instance
    batch: str | None = None  # the batch this run belongs to (fleet/batches/), kept in the record
    parsed: loader.Application | None = None  # ``xml`` already parsed by the caller (a batch parses once)
    checkpoint_every: float = 0  #: seconds between checkpoints while it runs (0: none; docs/persistence.md)


def read_app(xml: Application) -> tuple[str, str | None]:
    """(text, file name) of an application given as a path, or (text, None) as XML text; a
    gzip-compressed file (or bytes) gives its decompressed text, stored as a plain file's is."""
    if isinstance(xml, bytes):
        return xml_bytes(xml).decode(), None
    text = str(xml)
    if text.lstrip().startswith("<"):
        return text, None
    try:
        return read_text(text), str(Path(text))
    except OSError as e:
        raise GraphError(f"cannot read the file: {e.strerror}", text) from None


def parsed(text: str, file: str | None, digest: str) -> loader.Application:
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


def create(req: Request) -> tuple[int, loader.Application]:
    """Create the process ``req`` asks for and queue it; its pid and the parsed application.

    Raises:
        GraphError: the file is malformed; nothing was queued.
        ProcessRefused: the fleet can never run it (the message gives needed/available, or that
            no worker serves its group or user).
        ConfigurationError: an unknown engine type, an unreadable file, a bad rcon or group.
    """
    engine = req.engine or settings().engine
    group = process_group(req.group)
    engine_registry.load(engine)  # unknown engine types fail here, not on a worker
    text, file = read_app(req.xml)
    digest = hashlib.sha256(text.encode()).hexdigest()
    app = req.parsed or parsed(text, file, digest)
    rmap = combine(req.rmap, req.regions)
    arr, regions, split = resolve(app, rmap)
    options = _engine_options(req, app, arr, split is not None)
    pins = {str(k): v for k, v in (req.rcon or {}).items()}
    for k in pins:
        if not k.isdigit() or int(k) not in regions:
            raise ConfigurationError(f"rcon pins region {k!r}, but the regions in use are {regions}")
    served = {int(k): v for k, v in pins.items() if not isinstance(v, str)}  # Python engines
    alone = len(regions) < 2 and engine != ONE_REGION_ENGINE  # one region on an engine that writes no dump
    if req.checkpoint_every < 0 or req.checkpoint_every and (served or alone):
        raise ConfigurationError(f"checkpoint_every needs every region on the fleet engines (no Python engine), and "
                                 f"engine {ONE_REGION_ENGINE!r} for one region" if req.checkpoint_every > 0
                                 else "checkpoint_every must be 0 (none) or a number of seconds")
    pins = {k: str(v) for k, v in pins.items() if isinstance(v, str)}
    fleet_regions = [x for x in regions if x not in served]
    if served and req.overrides:  # a Python engine serves the instance as parsed: refused, not ignored
        raise ConfigurationError("overrides apply to engines on the fleet, not to regions a Python engine serves "
                                 f"(rcon regions {sorted(served)})")
    check_served(app, arr, served, fleet_regions)
    with store.reporting():  # a wrong password or a read-only Redis user: say so, no traceback
        pid = _new_pid(text, digest)
        record = {
            "pid": pid, "user": current_user(), "graph_type": app.graph_type.id, "instance": app.instance.id,
            "devices": app.instance.device_count, "edges": app.instance.edge_count, "engine": engine,
            "regions": json.dumps(fleet_regions), "nregions": len(fleet_regions), "rmap": _rmap_text(rmap),
            "client_regions": json.dumps(sorted(served)),
            "rcon": json.dumps(pins), "file": file or "app.xml", "app": digest, "level": int(req.level),
            "verbose": int(bool(req.verbose)), "options": json.dumps(options),
            "submitted": f"{time.time():.3f}", "state": "Submitted",
        }
        if group is not None:
            record["group"] = group
        if req.checkpoint_every:
            record["checkpoint_every"] = float(req.checkpoint_every)
        if split is not None:
            record["partition"] = json.dumps(split.as_dict())
        record.update(_run_tags(req))
        for region, server in served.items():  # before the process can start: it holds a share
            server.attach(pid, app, arr, region, regions)
        _queue(pid, engine, record, regions)
    return pid, app


def _engine_options(req: Request, app: loader.Application, arr: array[int], split: bool) -> dict[str, Any]:
    """The options every engine of the process gets: the caller's, the run's overrides (checked
    here: a bad key or value fails before anything is queued) and an automatic split's digest."""
    options = dict(req.options or {})
    if req.overrides:
        overrides.check(app, req.overrides)
        options["overrides"] = dict(req.overrides)
    if split:  # each engine computes the split again (cached): it must get this one
        options["split_digest"] = split_digest(arr)
    return options


def _run_tags(req: Request) -> dict[str, str]:
    """The record's fields for a run's overrides, its seed and its batch (only those it has)."""
    tags = {}
    if req.overrides:
        tags["overrides"] = json.dumps(dict(req.overrides))
        seed = req.overrides.get(f"graph:{overrides.SEED_PROPERTY}")
        if seed is not None:
            tags["seed"] = json.dumps(seed)
    if req.batch is not None:
        tags["batch"] = req.batch
    return tags


def _rmap_text(rmap: RegionMap) -> str:
    """The region map as the record keeps it: JSON of ``{device: region}``, or of ``"auto:K"``."""
    return json.dumps(rmap if isinstance(rmap, str) else dict(rmap or {}))


def _new_pid(text: str, digest: str) -> int:
    """Store the application text (once per hash) and take the next pid."""
    r, keys = store.client(), Keys.current()
    try:
        epoch.ensure(r, keys)  # a fresh Redis: a new stack id, and pids above any handed out before
    except redis.exceptions.NoPermissionError:
        pass  # a user without the right to write it: the fleet's workers write it when they join
    except redis.ResponseError as e:
        raise RedisUnavailable(f"Redis at {mask_url(store.redis_url())} cannot serve the stack: {e}") from None
    pipe = r.pipeline(transaction=False)
    pipe.set(keys.app(digest), text, ex=settings().result_expires)
    pipe.incr(keys.next_pid)
    try:
        return int(pipe.execute()[1])
    except redis.exceptions.NoPermissionError:
        raise
    except redis.ResponseError as e:  # LOADING, MISCONF, ...: up, but not usable
        raise RedisUnavailable(f"Redis at {mask_url(store.redis_url())} cannot serve the stack: {e}") from None


def _queue(pid: int, engine: str, record: Mapping[str, object], regions: list[int]) -> None:
    """Write the record and queue the process, in one transaction; start what that admitted."""
    keys, slots = Keys.current(), ledger()

    def write(pipe: Pipeline) -> None:
        pipe.hset(keys.proc(pid), mapping={k: str(v) for k, v in record.items()})
        pipe.zadd(keys.procs, {str(pid): pid})
        pipe.delete(*keys.queues(pid).all(regions))  # a fresh pid has none: the engines start clean
    refusal, admitted = slots.submit(engine, pid, write)
    if refusal is not None:
        slots.finish(pid, "Failed", f"refused: {refusal}")
    start(engine, admitted)  # others may have been admitted, refused or not
    if refusal is not None:
        raise ProcessRefused(f"process {pid} refused: {refusal}")


__all__ = ["Request", "Application", "create", "read_app", "parsed"]
