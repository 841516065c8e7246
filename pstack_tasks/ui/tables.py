"""Plain-text tables of engines and processes, shared by ``pstack``, ``pcli`` and ``top``.

Everything here turns the rows of :func:`process.engines` and :func:`process.ps` (plain dicts)
into lines of text, so the same columns appear in every view and can be tested without a
terminal or a fleet.
"""
from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

ACTIVE = ("Submitted", "Waiting", "Running")
METER_WIDTH = 10


def format_columns(headers: Sequence[str], rows: Iterable[Sequence[Any]], right: Iterable[int] = ()) -> list[str]:
    """Align cells into columns two spaces apart; column indexes in ``right`` align right."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    rset = set(right)
    return ["  ".join(c.rjust(w) if i in rset else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
            for r in cells]


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


ENGINE_HEADERS = ("TYPE", "NAME", "SLOTS", "BUSY", "USAGE", "STATUS", "PID", "SINCE")


def engine_rows(fleet: Iterable[Mapping[str, Any]], now: float | None = None) -> list[list[Any]]:
    """One row per engine worker: type, name (its host in the fleet), slots, busy, usage meter, status."""
    rows = []
    for w in fleet:
        since = w.get("since")
        rows.append([w["engine"], w["host"], w["slots"], w["busy"], meter(int(w["busy"]), int(w["slots"])),
                     "online" if w.get("alive") else "offline", w.get("os_pid", "-"),
                     time.strftime("%H:%M:%S", time.localtime(float(since))) if since else "-"])
    return rows


def engine_table(fleet: Iterable[Mapping[str, Any]]) -> list[str]:
    """``engines()`` as lines: a header, then one line per worker (host is the second column)."""
    return format_columns(ENGINE_HEADERS, engine_rows(fleet), right=(2, 3, 6))


def slots_by_engine(fleet: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Online slots per engine type (the denominator of a process's share)."""
    total: dict[str, int] = {}
    for w in fleet:
        if w.get("alive"):
            total[w["engine"]] = total.get(w["engine"], 0) + int(w["slots"])
    return total


def share(proc: Mapping[str, Any], slots: Mapping[str, int]) -> str:
    """The share of its engine type's online slots a running process holds (one slot per region)."""
    if proc.get("state") != "Running":
        return "-"
    total = slots.get(str(proc.get("engine")), 0)
    if not total:
        return "?"
    return f"{100 * len(proc.get('regions') or []) / total:.0f}%"


PROCESS_HEADERS = ("PID", "STATE", "REGIONS", "USER", "SHARE", "ELAPSED", "ENGINE", "DEVICES", "EDGES",
                   "DELIVERED", "GRAPH")


def process_rows(procs: Iterable[Mapping[str, Any]], fleet: Iterable[Mapping[str, Any]] = ()) -> list[list[Any]]:
    """One row per process: pid, state, regions, user, share of slots, elapsed, engine, devices,
    edges, messages delivered so far, graph type (and the reason of a failure after it)."""
    slots = slots_by_engine(fleet)
    rows = []
    for p in procs:
        graph = str(p.get("graph_type") or "-")
        if p.get("state") in ("Failed", "Killed") and p.get("reason"):
            graph += f"  ({p['reason']})"
        rows.append([p["pid"], p.get("state") or "-", len(p.get("regions") or []), p.get("user") or "-",
                     share(p, slots), elapsed(p.get("elapsed")), p.get("engine") or "-", p.get("devices", 0),
                     p.get("edges", 0), p.get("delivered", 0), graph])
    return rows


def process_table(procs: Iterable[Mapping[str, Any]], fleet: Iterable[Mapping[str, Any]] = ()) -> list[str]:
    """``ps()`` as lines: a header, then one line per process."""
    return format_columns(PROCESS_HEADERS, process_rows(procs, fleet), right=(0, 2, 4, 5, 7, 8, 9))


def order_for_view(procs: Sequence[Mapping[str, Any]], limit: int) -> list[Mapping[str, Any]]:
    """Active processes first (newest first), then the most recent ended ones, ``limit`` in all."""
    active = [p for p in procs if p.get("state") in ACTIVE]
    ended = [p for p in procs if p.get("state") not in ACTIVE]
    return (active + ended)[:max(0, limit)]
