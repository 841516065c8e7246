"""pcli's built-ins for running processes, pictures and the step debugger: inspect, inject, flush, draw, debug.

Each is the Python API (:mod:`pstack_tasks.fleet.inspection`, :mod:`pstack_tasks.fleet.housekeeping`,
:mod:`pstack_tasks.ui.drawing`, :mod:`pstack_tasks.native.debug`) with its value shown as pcli shows
values (:mod:`.display`).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from pstack_tasks.fleet import housekeeping, inspection
from pstack_tasks.ui import drawing
from pstack_tasks.ui.inspect_view import inspect_view
from pstack_tasks.ui.shell.display import Record
from pstack_tasks.ui.shell.persist import PERSIST_BUILTINS


def inspect(pid: int, items: int = 5) -> Record:
    """Each region of a running process: host, busy or idle, queue (first items decoded), delivered."""
    view = inspection.inspect(int(pid), items=items)
    return Record(view, inspect_view(view))


def inject(pid: int, device: str, pin: str, **fields: Any) -> dict[str, Any]:
    """Send a message from a device's output pin into a running process: inject(7, "n0", "out", x=1)."""
    return inspection.inject(int(pid), device, pin, **fields)


def flush(user: str | None = None) -> list[int]:
    """Forget your ended processes (records and results); an admin's flush() forgets everyone's."""
    return housekeeping.flush(user)


def draw(app: str | os.PathLike[str], rmap: Mapping[str, int] | str | None = None, path: str | None = None,
         regions: int | None = None) -> str:
    """Draw an application graph (graphviz) to path (.svg/.png/.pdf/.dot): devices coloured by region."""
    return drawing.draw(app, rmap, path, regions=regions)


def debug(app: str | os.PathLike[str], rmap: Mapping[str, int] | str | None = None, level: int = 1) -> Any:
    """A step-debugger session: s = debug("app.xml"); s.step(), s.until(lambda s: ...), s.cont(), s.result()."""
    from pstack_tasks.native.debug import debug as start_session  # here: the debugger is built on first use
    return start_session(app, rmap, level)


LIVE_BUILTINS: dict[str, Callable[..., Any]] = {"inspect": inspect, "inject": inject, "flush": flush, "draw": draw,
                                                "debug": debug, **PERSIST_BUILTINS}

__all__ = ["LIVE_BUILTINS", "inspect", "inject", "flush", "draw", "debug"]
