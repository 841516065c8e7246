"""The engine registry: the interface every engine type implements, and how a type is found.

An engine type ``T`` is an entry point named ``T`` in the group ``pstack.engines`` (this
distribution registers ``psim`` and ``dummy`` that way; third-party engines do the same,
docs/fleet.md) or, failing that, the module ``engines.T``.  Implementations live in the
top-level ``engines`` package and depend on ``pstack_tasks``; this module only names them by
string, so the core never imports an implementation.

Each exposes pstack's ``run_engine(xml, rmap={}, options={})``.  Workers of type ``T`` consume
the queue ``engine.T``.  Besides pstack's options, a region task passes ``region``, ``pid``,
``prefix``, ``redis_url``, ``app_id`` (the application's content hash: work done for it may be
reused), ``log`` (a callable taking one log line) and ``should_stop`` (a callable that returns
a reason once the region must stop: poll it a few times a second).
"""
from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any

from pstack_tasks.exceptions import ConfigurationError

RunEngine = Callable[[str, Mapping[str, int], Mapping[str, Any]], dict[str, Any]]

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


_loaded: dict[str, RunEngine] = {}


def load(engine_type: str) -> RunEngine:
    """The ``run_engine`` of an engine type, or a clear error naming the known ones.

    Found once per process: scanning the installed distributions for entry points costs
    milliseconds, and a worker asks for every region it runs.
    """
    hit = _loaded.get(engine_type)
    if hit is not None:
        return hit
    if not _NAME.match(engine_type or ""):
        raise ConfigurationError(f"engine type {engine_type!r}: use lower-case letters, digits and _")
    for ep in entry_points(group="pstack.engines"):
        if ep.name == engine_type:
            run_engine: RunEngine = ep.load()
            break
    else:
        try:
            module = importlib.import_module(f"engines.{engine_type}")
        except ModuleNotFoundError:
            raise ConfigurationError(f"unknown engine type {engine_type!r}; known: {', '.join(known())}") from None
        run_engine = module.run_engine
    _loaded[engine_type] = run_engine
    return run_engine


def known() -> list[str]:
    """Every engine type this installation can run: entry points, and ``engines.*`` modules."""
    import pkgutil
    try:
        bundled = importlib.import_module("engines")
        names = {m.name for m in pkgutil.iter_modules(bundled.__path__)}
    except ModuleNotFoundError:
        names = set()
    names |= {ep.name for ep in entry_points(group="pstack.engines")}
    return sorted(names)
