"""Merging per-region results into one process result (pstack's shape, plus per-region metrics)."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

SUMMED = ("Delivered messages", "Sent messages", "Cancelled sends", "Remote messages sent",
          "Remote messages received")


def merge_results(parts: Mapping[int, Mapping[str, Any]]) -> dict[str, Any]:
    """States merged, counts summed, exit code and reason from the region that ended the run.

    The region where the stop began (``handler_exit``, a step or time limit) decides the exit
    code and reason; regions that were told to stop report "remote stop" and defer to it.
    """
    states: dict[str, Any] = {}
    metrics: dict[str, Any] = {k: 0 for k in SUMMED}
    per_region: dict[str, Any] = {}
    origin = None
    for region in sorted(parts):
        result = parts[region]
        states.update(result.get("states", {}))
        m = result.get("metrics", {})
        per_region[str(region)] = dict(m)
        for k in SUMMED:
            metrics[k] += int(m.get(k, 0))
        if origin is None and m.get("Exit reason") not in ("remote stop", "quiescence"):
            origin = m
    first = parts[min(parts)]["metrics"] if parts else {}
    chosen = origin or first
    metrics["Exit code"] = chosen.get("Exit code", 0)
    metrics["Exit reason"] = chosen.get("Exit reason", "quiescence")
    # every region takes part in every OnHardwareIdle round, so the count is the same everywhere
    metrics["Hardware idle rounds"] = max((int(p["metrics"].get("Hardware idle rounds", 0)) for p in parts.values()),
                                          default=0)
    metrics["Run seconds"] = max((float(p["metrics"].get("Run seconds", 0.0)) for p in parts.values()), default=0.0)
    return {"states": states, "metrics": metrics, "regions": per_region}


def format_value(v: Any) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {format_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(format_value(x) for x in v) + "]"
    return str(v)


def format_text(result: Mapping[str, Any]) -> Iterable[str]:
    """pstack's human output: ``Metric [...]: n`` then ``State [dev]: a = 1, b = 2`` lines."""
    metrics = result.get("metrics", {})
    yield f"Metric [Delivered messages]: {metrics.get('Delivered messages', 0)}"
    yield f"Metric [Exit code]: {metrics.get('Exit code', 0)}"
    for name, state in result.get("states", {}).items():
        yield f"State [{name}]: " + ", ".join(f"{k} = {format_value(v)}" for k, v in state.items())
