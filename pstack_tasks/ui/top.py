"""``top``: a live full-screen view of the fleet's engines and processes (``q`` quits).

The screen is a prompt_toolkit full-screen :class:`Application` that redraws a few times a
second.  What it shows comes from :func:`screen`, a pure function of a :class:`Snapshot`
(the rows of :func:`process.engines` and :func:`process.ps`): the same rich tables as
``pstack ps`` and ``pstack engines``, one line per row, rendered to ANSI text that
prompt_toolkit draws (:func:`render` gives the same screen as plain lines, for tests).
:func:`snapshot` is the only part that talks to Redis.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Group
from rich.text import Text

from pstack_tasks.ui.columns import ACTIVE, TOP_PROCESS_COLUMNS, clock, order_for_view
from pstack_tasks.ui.tables import ansi_text, engine_table, plain_text, process_table

logger = logging.getLogger(__name__)

#: seconds between redraws (and between reads of the fleet's state)
REFRESH = 0.25
#: processes read per refresh; the screen shows as many as fit
PROCESS_LIMIT = 200


@dataclass
class Snapshot:
    """What the fleet looked like at one moment: plain rows, as the Python API returns them."""

    engines: Sequence[Mapping[str, Any]] = ()
    procs: Sequence[Mapping[str, Any]] = ()
    taken: float = field(default_factory=time.time)
    error: str = ""
    #: messages delivered per second by each running process since the previous snapshot
    rates: Mapping[int, float] = field(default_factory=dict)


def with_rates(snap: Snapshot, previous: Snapshot | None) -> Snapshot:
    """``snap`` with each running process's delivery rate since ``previous`` (the RATE column)."""
    if previous is None or snap.taken <= previous.taken:
        return snap
    before = {p["pid"]: int(p.get("delivered") or 0) for p in previous.procs}
    dt = snap.taken - previous.taken
    snap.rates = {p["pid"]: max(0, int(p.get("delivered") or 0) - before[p["pid"]]) / dt
                  for p in snap.procs if p.get("state") == "Running" and p["pid"] in before}
    return snap


def snapshot(limit: int = PROCESS_LIMIT) -> Snapshot:
    """Read the fleet now; an unreachable Redis becomes ``error`` (the view keeps running)."""
    from pstack_tasks.fleet.client import engines, ps
    try:
        return Snapshot(engines(), ps(limit=limit))
    except Exception as e:  # shown on screen, so that top survives a Redis restart
        logger.debug("top: reading the fleet failed", exc_info=True)
        return Snapshot(error=f"cannot read the fleet: {e}")


def screen(snap: Snapshot, height: int = 50) -> Group:
    """What top shows: a summary, the engines table, the processes that fit in ``height`` lines."""
    online = [w for w in snap.engines if w.get("alive")]
    slots = sum(int(w["slots"]) for w in online)
    busy = sum(int(w["busy"]) for w in online)
    active = sum(1 for p in snap.procs if p.get("state") in ACTIVE)
    head = [Text(f"pstack top - {clock(snap.taken)} - engines: {len(online)} online, {busy}/{slots} slots busy - "
                 f"processes: {active} active, {len(snap.procs)} listed - q quits", style="reverse", no_wrap=True,
                 overflow="ellipsis")]
    if snap.error:
        head.append(Text(f"!! {snap.error}", style="red", no_wrap=True, overflow="ellipsis"))
    engines = (engine_table(snap.engines, one_line=True) if snap.engines
               else Text("(no engine workers registered)"))
    used = len(head) + 1 + (1 + len(snap.engines) if snap.engines else 1) + 1
    shown = order_for_view(list(snap.procs), max(1, height - used - 1))
    rows = [{**p, "rate": snap.rates.get(p["pid"])} for p in shown]
    procs = (process_table(rows, snap.engines, one_line=True, columns=TOP_PROCESS_COLUMNS) if shown
             else Text("(no processes)"))
    return Group(*head, Text(""), engines, Text(""), procs)


def render(snap: Snapshot, height: int = 50, width: int = 160) -> list[str]:
    """The screen as plain lines, cut to ``height`` (the same layout top draws in colour)."""
    return plain_text(screen(snap, height), width).splitlines()[:height]


def run_top(fetch: Callable[[], Snapshot] = snapshot, refresh: float = REFRESH) -> None:
    """Show the live view until ``q`` (or Ctrl-C); blocks the caller meanwhile."""
    from prompt_toolkit.application import Application
    from prompt_toolkit.formatted_text import ANSI
    from prompt_toolkit.key_binding import KeyBindings
    from prompt_toolkit.layout import Layout
    from prompt_toolkit.layout.containers import Window
    from prompt_toolkit.layout.controls import FormattedTextControl

    state: dict[str, Any] = {"snap": Snapshot(), "at": 0.0, "drawn": None}

    def text() -> ANSI:
        now = time.monotonic()
        if now - state["at"] >= refresh * 0.8:  # one read of the fleet per redraw, however often asked
            state["snap"], state["at"] = with_rates(fetch(), state["snap"] if state["at"] else None), now
        size = app.output.get_size()
        key = (state["at"], size.rows, size.columns)
        if state["drawn"] is None or state["drawn"][0] != key:  # a key press redraws what is already laid out
            lines = ansi_text(screen(state["snap"], size.rows), size.columns).splitlines()
            state["drawn"] = (key, ANSI("\n".join(lines[:size.rows])))
        drawn: ANSI = state["drawn"][1]
        return drawn

    keys = KeyBindings()

    @keys.add("q")
    @keys.add("Q")
    @keys.add("c-c")
    @keys.add("escape", eager=True)
    def _quit(event: Any) -> None:
        event.app.exit()

    app: Application[None] = Application(layout=Layout(Window(FormattedTextControl(text), wrap_lines=False)),
                                         key_bindings=keys, full_screen=True, refresh_interval=refresh,
                                         mouse_support=False)
    app.run()
