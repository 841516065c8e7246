"""Finding a graph type's cached engine without rendering its source.

The engine cache (:mod:`~pstack_tasks.native.build`) is keyed by the rendered C++ source, so
finding an engine that way means rendering the template first: jinja2's import and the render
cost more than the whole run of a small application.  This index remembers, per *inputs* of a
render and build, which engine they made and its type hash:

* the graph type itself (its ``repr``: every field of the frozen model, the file name aside);
* the files that turn a graph type into source: the templates, the code generator, the protocol
  and its Lua script, the graph model (each by path, size and modification time);
* the runtime headers, the compiler flags and the compiler binary (by path, size and mtime).

Any change to an input gives a new index key: the next run renders, finds or builds the engine
by its content key as before, and records the new entry.  An entry whose engine is gone (the
cache was cleaned) is a miss.  So the index can only save work, never pick a stale engine.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from pstack_tasks.graph.model import GraphType
from pstack_tasks.native import build, codegen, engine_inputs

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FoundEngine:
    """A compiled engine and the type hash its instance files must carry."""

    engine: Path
    type_hash: str


def engine_for(gt: GraphType) -> FoundEngine:
    """The engine of ``gt``: from the index when its inputs were seen before, else rendered and
    built (or found in the build cache by content) and then remembered."""
    key = index_key(gt)
    entry = _index_path(key)
    hit = _read_entry(entry)
    if hit is not None:
        return hit
    source = codegen.render(gt)
    engine = build.build_engine(source)
    build.write_atomically(entry, f"{engine.parent.name} {source.type_hash}\n".encode())
    logger.debug("engine index: %s -> %s", key, engine)
    return FoundEngine(engine, source.type_hash)


def index_key(gt: GraphType) -> str:
    """A digest of everything a render and build of ``gt`` depends on (module docstring)."""
    h = hashlib.sha256()
    h.update(repr(dataclasses.replace(gt, file="")).encode())
    h.update(b"\0")
    h.update(engine_inputs.signature().encode())
    return h.hexdigest()[:32]


def _index_path(key: str) -> Path:
    return build.cache_dir() / "engine-index" / key


def _read_entry(entry: Path) -> FoundEngine | None:
    try:
        engine_key, type_hash = entry.read_text().split()
    except (OSError, ValueError):
        return None
    engine = build.cache_dir() / "engines" / engine_key / "engine"
    return FoundEngine(engine, type_hash) if engine.is_file() else None
