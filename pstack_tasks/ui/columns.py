"""The columns of every table the user sees, defined once: header, how a value is shown, alignment.

``pstack ps``, pcli's ``ps()``, ``pstack engines``, pcli's ``engines()`` and ``top`` all draw the
process and engine tables from :data:`PROCESS_COLUMNS` and :data:`ENGINE_COLUMNS`, so a column
added or changed here changes every view at once; :mod:`pstack_tasks.ui.tables` renders them.
A row is a plain dict as :func:`process.ps` and :func:`process.engines` return it.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Row = Mapping[str, Any]

#: states of a process that has not ended (top lists these first)
ACTIVE = ("Submitted", "Waiting", "Recovering", "Running")
#: the colour of each process state on a terminal (rich styles)
STATE_STYLES = {"Submitted": "cyan", "Waiting": "yellow", "Recovering": "bold yellow", "Running": "green",
                "Done": "blue", "Failed": "bold red", "Killed": "magenta"}
#: the colour of an engine worker's status
STATUS_STYLES = {"online": "green", "offline": "red"}
METER_WIDTH = 10


@dataclass(frozen=True)
class Column:
    """One column: its header, the text of a row's cell, its alignment and (optionally) colour.

    ``free`` marks a column of free text (a graph type, a reason) that may wrap on a narrow
    terminal; the other columns keep their values whole.
    """

    header: str
    text: Callable[[Row], str]
    justify: Literal["left", "right"] = "left"
    style: Callable[[Row], str] | None = None
    free: bool = False


def field(name: str, default: str = "-") -> Callable[[Row], str]:
    """The cell text of a row's ``name`` (``default`` when absent or empty)."""
    def text(row: Row) -> str:
        value = row.get(name)
        return default if value is None or value == "" else str(value)
    return text


def meter(used: int, total: int, width: int = METER_WIDTH) -> str:
    """An htop-like usage bar: ``[|||||     ] 2/4``."""
    filled = 0 if total <= 0 else min(width, round(width * used / total))
    return f"[{'|' * filled}{' ' * (width - filled)}] {used}/{total}"


def elapsed(seconds: float | None) -> str:
    """``12.3s``, ``4m05s``, ``2h03m``: short enough for a column."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def clock(t: float | None) -> str:
    """A time of day, ``14:02:07`` (``-`` if unknown)."""
    return time.strftime("%H:%M:%S", time.localtime(float(t))) if t else "-"


def slots_by_engine(fleet: Iterable[Row]) -> dict[str, int]:
    """Online slots per engine type (the denominator of a process's share)."""
    total: dict[str, int] = {}
    for w in fleet:
        if w.get("alive"):
            total[w["engine"]] = total.get(w["engine"], 0) + int(w["slots"])
    return total


def share(proc: Row, slots: Mapping[str, int]) -> str:
    """The share of its engine type's online slots a running process holds (one slot per region)."""
    if proc.get("state") != "Running":
        return "-"
    total = slots.get(str(proc.get("engine")), 0)
    if not total:
        return "?"
    return f"{100 * len(proc.get('regions') or []) / total:.0f}%"


def with_share(procs: Iterable[Row], fleet: Iterable[Row]) -> list[dict[str, Any]]:
    """The process rows with their ``share`` of the fleet's slots added (the SHARE column)."""
    slots = slots_by_engine(fleet)
    return [{**p, "share": share(p, slots)} for p in procs]


def order_for_view(procs: Sequence[Row], limit: int) -> list[Row]:
    """Active processes first (newest first), then the most recent ended ones, ``limit`` in all."""
    active = [p for p in procs if p.get("state") in ACTIVE]
    ended = [p for p in procs if p.get("state") not in ACTIVE]
    return (active + ended)[:max(0, limit)]


def _state_style(row: Row) -> str:
    return STATE_STYLES.get(str(row.get("state")), "")


def _owner(row: Row) -> str:
    """``user``, or ``user/group`` for a process of a group (docs/fleet.md, "Worker groups")."""
    user = field("user")(row)
    return f"{user}/{row['group']}" if row.get("group") else user


def recoveries(row: Row) -> str:
    """The REC column: how many times the process recovered from a lost worker (``-``: never)."""
    notes = row.get("recoveries")
    return str(len(notes)) if notes else "-"


def reason(row: Row) -> str:
    """The REASON column: how the process ended, or while it is Recovering, the worker it lost
    (its last recovery's reason: docs/persistence.md, "Automatic recovery")."""
    notes = row.get("recoveries") or ()
    if row.get("state") == "Recovering" and notes:
        return f"recovering from checkpoint {notes[-1].get('checkpoint')}: {notes[-1].get('reason')}"
    return field("reason", "")(row)


def _status(row: Row) -> str:
    return "online" if row.get("alive") else "offline"


PROCESS_COLUMNS: tuple[Column, ...] = (
    Column("PID", field("pid"), "right"),
    Column("STATE", field("state"), style=_state_style),
    Column("REC", recoveries, "right"),
    Column("USER", _owner),
    Column("ENGINE", field("engine")),
    Column("REGIONS", lambda p: str(len(p.get("regions") or [])), "right"),
    Column("SHARE", field("share"), "right"),
    Column("DEVICES", field("devices", "0"), "right"),
    Column("EDGES", field("edges", "0"), "right"),
    Column("DELIVERED", field("delivered", "0"), "right"),
    Column("ELAPSED", lambda p: elapsed(p.get("elapsed")), "right"),
    Column("GRAPH", field("graph_type"), free=True),
    Column("REASON", reason, free=True),
)

def rate(per_second: float | None) -> str:
    """Messages per second, short: ``850/s``, ``12.3k/s``, ``2.10M/s`` (``-`` when unknown)."""
    if per_second is None:
        return "-"
    if per_second < 1000:
        return f"{per_second:.0f}/s"
    if per_second < 1_000_000:
        return f"{per_second / 1000:.1f}k/s"
    return f"{per_second / 1_000_000:.2f}M/s"


#: top's process columns: ps's, with the messages delivered per second since the last refresh
TOP_PROCESS_COLUMNS: tuple[Column, ...] = tuple(
    c for col in PROCESS_COLUMNS
    for c in ((col, Column("RATE", lambda p: rate(p.get("rate")), "right")) if col.header == "DELIVERED" else (col,)))

ENGINE_COLUMNS: tuple[Column, ...] = (
    Column("TYPE", field("engine")),
    Column("NAME", field("host")),
    Column("SLOTS", field("slots"), "right"),
    Column("BUSY", field("busy"), "right"),
    Column("USAGE", lambda w: meter(int(w["busy"]), int(w["slots"]))),
    Column("STATUS", _status, style=lambda w: STATUS_STYLES[_status(w)]),
    Column("PID", field("os_pid"), "right"),
    Column("SINCE", lambda w: clock(w.get("since"))),
)
