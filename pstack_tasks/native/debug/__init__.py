"""The step debugger: an application's own compiled handlers, one event at a time, driven from Python.

``debug(app, rmap=None) -> Session`` (:mod:`.session`); the debug engine is built by
:mod:`.engine_build` from ``debug_scheduler.cpp`` and ``debug_commands.cpp`` and driven over a pipe by :mod:`.channel`;
:mod:`.events` names what it reports, :mod:`.layout` reads and writes device state.
docs/debugging.md, "The step debugger".
"""
from __future__ import annotations

from pstack_tasks.native.debug.session import Session, debug

__all__ = ["Session", "debug"]
