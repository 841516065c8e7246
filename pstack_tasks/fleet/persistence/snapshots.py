"""``snapshot(pid)``: a running process's states, messages in flight and counters, without ending it.

Taken at one consistent cut (:mod:`~pstack_tasks.fleet.persistence.barrier`); the states come in
the shape of a final result's (``{device: {field: value}}``, arrays with ``full_state``), merged
over the regions as a result is (:func:`~pstack_tasks.native.results.merge_results`).
"""
from __future__ import annotations

from typing import Any

from pstack_tasks.fleet import store
from pstack_tasks.fleet.keys import Keys
from pstack_tasks.fleet.message_items import decode
from pstack_tasks.fleet.persistence.barrier import MODE_FULL_STATES, MODE_STATES, Cut, pause_all
from pstack_tasks.fleet.persistence.dumps import items_of
from pstack_tasks.fleet.submission import parsed
from pstack_tasks.graph.loader import Application
from pstack_tasks.native.results import merge_results

#: in-flight items decoded in a snapshot (the count covers them all)
ITEMS_SHOWN = 100


def snapshot(pid: int, full_state: bool = False, timeout: float | None = None) -> dict[str, Any]:
    """Every device's state, the messages in flight and each region's counters of running process
    ``pid``, taken while every region paused at one barrier (bounded by ``timeout``).

    Returns:
        ``{"pid", "time", "pause_seconds", "states", "metrics", "regions": {region: {"delivered",
        "sent", "steps", ..., "ready", "held", "queued"}}, "in_flight", "in_flight_items"}``.

    Raises:
        ProcessNotFound, ProcessError: see :func:`~pstack_tasks.fleet.persistence.barrier.pause_all`.
    """
    cut = pause_all(pid, MODE_FULL_STATES if full_state else MODE_STATES, timeout)
    return view(cut)


def view(cut: Cut, app: Application | None = None) -> dict[str, Any]:
    """What a snapshot shows of a cut (its in-flight items decoded with ``app``, else with the
    process's application as the fleet keeps it)."""
    merged = merge_results({x: d.result for x, d in cut.dumps.items()})
    regions: dict[str, Any] = {}
    flying: list[tuple[int, str]] = []
    for x, d in sorted(cut.dumps.items()):
        held, queued = items_of(d.held), items_of(cut.queued.get(x, []))
        flying += [(x, item) for item in held + queued]
        regions[str(x)] = dict(d.counters, ready=d.ready, held=len(held), queued=len(queued))
    return {"pid": cut.pid, "time": cut.taken, "pause_seconds": cut.pause_seconds, "states": merged["states"],
            "metrics": merged["metrics"], "regions": regions, "in_flight": len(flying),
            "in_flight_items": _decoded(cut, flying[:ITEMS_SHOWN], app)}


def _decoded(cut: Cut, items: list[tuple[int, str]], app: Application | None) -> list[dict[str, Any]]:
    if not items:
        return []
    if app is not None:
        return [dict(decode(app, item), region=x) for x, item in items]
    with store.reporting():
        text = store.text(store.client().get(Keys.current().app(cut.record["app"])))
    if text is None:
        return [{"region": x, "item": item} for x, item in items]
    known = parsed(text, None, cut.record["app"])
    return [dict(decode(known, item), region=x) for x, item in items]


__all__ = ["snapshot", "view", "MODE_STATES"]
