"""Preparing an application to run: parse it, render its engine, build (or find) the binary.

Preparing is the expensive part of a small run, so a worker keeps what it prepared for the
next run of the same application (by content hash), when the application is small enough.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pstack_tasks.graph import loader
from pstack_tasks.memo import BoundedCache
from pstack_tasks.native import engine_index, instance_loader
from pstack_tasks.phases import phase


@dataclass
class Prepared:
    """An application parsed and its engine built: ready to run any number of times."""

    app: loader.Application
    type_hash: str  # of the engine's graph type: every instance file for it carries this
    engine: Path


#: applications kept parsed, with their engines, per process (small ones: Application.worth_keeping)
_prepared: BoundedCache[str, Prepared] = BoundedCache(8)


def prepare(xml_or_path: str | bytes | os.PathLike[str], app_id: str | None = None) -> Prepared:
    """Parse the application and build (or find) its engine.

    With ``app_id`` (a content hash the caller vouches for), the result is kept for the next
    run of the same application in this process: a worker running many small processes of
    one application parses and renders it once, not once per region.
    """
    if app_id is not None:
        hit = _prepared.get(app_id)
        if hit is not None and hit.engine.is_file():
            return hit
    with phase("load"):
        app = instance_loader.load(xml_or_path)
    with phase("engine render and build"):
        found = engine_index.engine_for(app.graph_type)  # rendered and built only on a miss
    prep = Prepared(app, found.type_hash, found.engine)
    if app_id is not None and app.worth_keeping():
        _prepared.put(app_id, prep)
    return prep
