"""``top``: a live full-screen view of the fleet's engines and processes (``q`` quits).

The screen is a prompt_toolkit full-screen :class:`Application` that redraws a few times a
second.  What it shows comes from :func:`render`, a pure function of a :class:`Snapshot`
(the rows of :func:`process.engines` and :func:`process.ps`), so the columns are tested
without a terminal; :func:`snapshot` is the only part that talks to Redis.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pstack_tasks.ui.tables import ACTIVE, engine_table, order_for_view, process_table

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


def snapshot(limit: int = PROCESS_LIMIT) -> Snapshot:
    """Read the fleet now; an unreachable Redis becomes ``error`` (the view keeps running)."""
    from pstack_tasks.fleet.client import engines, ps
    try:
        return Snapshot(engines(), ps(limit=limit))
    except Exception as e:  # shown on screen, so that top survives a Redis restart
        logger.debug("top: reading the fleet failed", exc_info=True)
        return Snapshot(error=f"cannot read the fleet: {e}")


def render(snap: Snapshot, height: int = 50) -> list[str]:
    """The screen as lines: a summary, the engines table, the processes table (cut to ``height``)."""
    online = [w for w in snap.engines if w.get("alive")]
    slots = sum(int(w["slots"]) for w in online)
    busy = sum(int(w["busy"]) for w in online)
    active = sum(1 for p in snap.procs if p.get("state") in ACTIVE)
    clock = time.strftime("%H:%M:%S", time.localtime(snap.taken))
    lines = [f"pstack top - {clock} - engines: {len(online)} online, {busy}/{slots} slots busy - "
             f"processes: {active} active, {len(snap.procs)} listed - q quits"]
    if snap.error:
        lines.append(f"!! {snap.error}")
    lines.append("")
    lines += engine_table(snap.engines) if snap.engines else ["(no engine workers registered)"]
    lines.append("")
    room = max(1, height - len(lines) - 1)
    shown = order_for_view(list(snap.procs), room)
    lines += process_table(shown, snap.engines) if shown else ["(no processes)"]
    return lines[:height]


def _styled(lines: list[str]) -> list[tuple[str, str]]:
    """prompt_toolkit fragments: the summary and table headers stand out."""
    out: list[tuple[str, str]] = []
    for i, line in enumerate(lines):
        header = line.lstrip().startswith(("TYPE ", "PID "))
        style = "reverse" if i == 0 else "bold" if header else "fg:ansired" if line.startswith("!!") else ""
        out.append((style, line + "\n"))
    return out


def run_top(fetch: Callable[[], Snapshot] = snapshot, refresh: float = REFRESH) -> None:
    """Show the live view until ``q`` (or Ctrl-C); blocks the caller meanwhile."""
    from prompt_toolkit.application import Application
    from prompt_toolkit.key_binding import KeyBindings
    from prompt_toolkit.layout import Layout
    from prompt_toolkit.layout.containers import Window
    from prompt_toolkit.layout.controls import FormattedTextControl

    state: dict[str, Any] = {"snap": Snapshot(), "at": 0.0}

    def text() -> list[tuple[str, str]]:
        now = time.monotonic()
        if now - state["at"] >= refresh * 0.8:  # one read of the fleet per redraw, however often asked
            state["snap"], state["at"] = fetch(), now
        try:
            height = app.output.get_size().rows
        except Exception:
            height = 50
        return _styled(render(state["snap"], height))

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
