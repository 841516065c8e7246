"""Starting a batch: the application parsed once, every run's overrides checked before anything
is queued, the batch record written, then each run submitted as a process through the ordinary
submission path (gang-scheduled as any process), tagged with the batch id.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from pstack_tasks import engine as engine_registry
from pstack_tasks.config import settings
from pstack_tasks.exceptions import ConfigurationError, PstackError
from pstack_tasks.fleet import client, store
from pstack_tasks.fleet.batches import record
from pstack_tasks.fleet.batches.grid import Grid, RunSpec, expand
from pstack_tasks.fleet.matching import process_group
from pstack_tasks.fleet.submission import Application, Request, create, read_app
from pstack_tasks.fleet.users import current_user
from pstack_tasks.graph import loader
from pstack_tasks.graph.overrides import check, seed_key
from pstack_tasks.native.split_cache import RegionMap

logger = logging.getLogger(__name__)
#: runs submitted between two notes in the batch record (each note is one round trip to Redis)
NOTE_EVERY = 8


def start(xml: Application, grid: Grid | None = None, runs: int = 1, seeds: Sequence[Any] | None = None,
          rmap: RegionMap = None, engine: str | None = None, group: str | None = None,
          options: Mapping[str, Any] | None = None, regions: int | None = None) -> int:
    """Submit a batch; its id once every run is queued (docs/batches.md).

    Raises:
        GraphError: the file is malformed, a grid key names nothing, a value does not fit, or
            seeds were asked of a graph type without a ``seed`` graph property; nothing was queued.
        ConfigurationError: bad runs or seeds, an unknown engine type, a malformed group.
        ProcessRefused: the fleet can never run the runs (nothing else was queued).
    """
    engine = engine or settings().engine
    engine_registry.load(engine)
    text, file = read_app(xml)
    app = loader.load(file if file is not None else text.encode())
    specs = expand(grid, runs, seeds)
    key = seed_key(app.graph_type, app.file) if seeds else None
    if key is not None and key in (grid or {}):
        raise ConfigurationError(f"give the seeds either as seeds or as the grid key {key!r}, not both")
    group = process_group(group)  # PSTACK_GROUP when not given: the batch's record names it too
    _check_values(app, grid or {}, key, seeds or [])
    fields = {"user": current_user(), "group": group or "", "app": file or "app.xml", "graph_type": app.graph_type.id,
              "devices": app.instance.device_count, "grid": {k: list(v) for k, v in (grid or {}).items()},
              "runs": runs, "seeds": list(seeds or []), "engine": engine, "rmap": rmap if isinstance(rmap, str)
              else dict(rmap or {}), "total": len(specs)}
    with store.reporting():
        batch_id = record.create(fields)
        _submit_runs(batch_id, specs, key, Request(text if file is None else file, rmap=rmap, engine=engine,
                                                  options=options, regions=regions), app, group)
    logger.info("batch %s: %d runs submitted", batch_id, len(specs))
    return batch_id


def _check_values(app: loader.Application, grid: Grid, key: str | None, seeds: Sequence[Any]) -> None:
    """Every value of every key (and every seed) checked against the application, each alone:
    a bad one is refused, naming its key, before the batch exists."""
    for k, values in grid.items():
        for v in values:
            check(app, {k: v})
    for s in seeds:
        check(app, {str(key): s})


def _submit_runs(batch_id: int, specs: list[RunSpec], key: str | None, base: Request, app: loader.Application,
                 group: str | None) -> None:
    """Each run as a process, noted in the batch :data:`NOTE_EVERY` at a time; stops early when the
    batch is killed meanwhile (killing what it submitted since it last looked), or a run is refused."""
    unnoted: list[tuple[RunSpec, int]] = []
    for spec in specs:
        req = Request(base.xml, base.rmap, None, base.level, False, base.engine, base.options, base.regions,
                      overrides=spec.overrides(key), batch=str(batch_id), parsed=app, group=group)
        try:
            pid, _ = create(req)
        except PstackError as e:
            if unnoted:
                record.add_runs(batch_id, unnoted)
            record.note(batch_id, error=f"run {spec.index}: {e}")
            raise
        unnoted.append((spec, pid))
        if len(unnoted) < NOTE_EVERY and spec is not specs[-1]:
            continue
        if record.add_runs(batch_id, unnoted):
            for _, late in unnoted:  # its killer may have looked before these were noted
                client.kill(late, wait=0)
            logger.info("batch %s was killed while it was submitted: %d runs not submitted", batch_id,
                        len(specs) - spec.index - 1)
            return
        unnoted = []


__all__ = ["start"]
