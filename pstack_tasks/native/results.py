"""Merging per-region results into one process result (pstack's shape, plus per-region metrics),
and pstack's text rendering of a result (engines print JSON only: this is the one renderer)."""
from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from typing import IO, Any

from pstack_tasks.protocol import ExitReason, Metric

#: metrics a process reports as the sum over its regions
SUMMED = (Metric.DELIVERED, Metric.SENT, Metric.CANCELLED, Metric.REMOTE_SENT, Metric.REMOTE_RECEIVED,
          Metric.SUPERVISOR_RECEIVED, Metric.SUPERVISOR_SENT)


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
        if origin is None and m.get(Metric.EXIT_REASON) not in ExitReason.FOLLOWED:
            origin = m
    for k in (Metric.SUPERVISOR_RECEIVED, Metric.SUPERVISOR_SENT):  # only engines of a supervisor report them
        if not any(k in parts[r].get("metrics", {}) for r in parts):
            del metrics[k]
    first = parts[min(parts)]["metrics"] if parts else {}
    chosen = origin or first
    metrics[Metric.EXIT_CODE] = chosen.get(Metric.EXIT_CODE, 0)
    metrics[Metric.EXIT_REASON] = chosen.get(Metric.EXIT_REASON, ExitReason.QUIESCENCE)
    # every region takes part in every OnHardwareIdle round, so the count is the same everywhere
    metrics[Metric.IDLE_ROUNDS] = _most(parts, Metric.IDLE_ROUNDS, int)
    metrics[Metric.RUN_SECONDS] = _most(parts, Metric.RUN_SECONDS, float)
    return {"states": states, "metrics": metrics, "regions": per_region}


def _most(parts: Mapping[int, Mapping[str, Any]], name: str, kind: type[int] | type[float]) -> int | float:
    """The largest value of one metric over the regions (0 when none reports it)."""
    return max((kind(p["metrics"].get(name, 0)) for p in parts.values()), default=kind(0))


def format_value(v: Any) -> str:
    """A state member as pstack prints it: ``{a = 1, b = [2, 3]}``.

    A float as C's ``%.17g`` (``1``, ``0.10000000000000001``, ``-0``, ``nan``, ``inf``): the
    engine writes floats into its JSON as ``%.17g`` text, which reads back as the same double,
    so this gives what a C program printing the state itself would.
    """
    if isinstance(v, float):
        return "%.17g" % v
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {format_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(format_value(x) for x in v) + "]"
    return str(v)


def format_text(result: Mapping[str, Any]) -> Iterator[str]:
    """pstack's human output: ``Metric [...]: n`` then ``State [dev]: a = 1, b = 2`` lines.

    The one renderer of this text: engines print JSON only, so a run in one region, a local
    split and a process of the fleet all print through here.
    """
    metrics = result.get("metrics", {})
    yield f"Metric [{Metric.DELIVERED}]: {metrics.get(Metric.DELIVERED, 0)}"
    yield f"Metric [{Metric.EXIT_CODE}]: {metrics.get(Metric.EXIT_CODE, 0)}"
    for name, state in result.get("states", {}).items():
        # integers, nearly every member of nearly every state, skip the call (a million states
        # print in a second)
        yield f"State [{name}]: " + ", ".join([f"{k} = {v}" if type(v) is int else f"{k} = {format_value(v)}"
                                                for k, v in state.items()])


def write_text(result: Mapping[str, Any], out: IO[str], chunk: int = 4096) -> None:
    """:func:`format_text` written to ``out``, some thousand lines per write."""
    lines = format_text(result)
    while batch := list(itertools.islice(lines, chunk)):
        out.write("\n".join(batch) + "\n")
