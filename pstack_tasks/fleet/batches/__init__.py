"""Batches: one application run many times over a grid of overrides, seeds and repeats, each run a
process on the fleet tagged with the batch id, the whole inspectable as one (docs/batches.md).

- ``grid``: what the runs are (the cartesian product; ``--set`` and ``--seeds`` parsed).
- ``submit``: the application parsed once, every value checked, then each run submitted.
- ``record``: the batch's keys in Redis; ``outcomes``: how its runs stand, counts per state.
- ``control``: waiting for a batch, killing it; ``table``: rows, CSV and JSON lines.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pstack_tasks.fleet import store
from pstack_tasks.fleet.batches import control, outcomes, record, table
from pstack_tasks.fleet.batches.grid import Grid
from pstack_tasks.fleet.batches.outcomes import BatchView
from pstack_tasks.fleet.batches.submit import start
from pstack_tasks.fleet.submission import Application
from pstack_tasks.native.split_cache import RegionMap


@dataclass(frozen=True)
class Batch:
    """A submitted batch: ``.id`` now; its runs' state and results whenever asked."""

    id: int

    def view(self) -> BatchView:
        """The batch and every run as they stand now."""
        return outcomes.view(self.id)

    def summary(self) -> dict[str, Any]:
        """The record with its counts per state and the batch's state."""
        return self.view().summary()

    def rows(self) -> list[dict[str, Any]]:
        """One dict per run: grid keys, run, seed, pid, state, metrics, seconds, reason."""
        return table.rows(self.view())

    def wait(self, timeout: float | None = None, progress: control.Watcher | None = None) -> BatchView:
        """Wait until every run is over (TimeoutError after ``timeout`` seconds; the batch goes on)."""
        return control.wait(self.id, timeout, progress)

    def kill(self) -> BatchView:
        """Kill it: running runs are killed, waiting ones dropped, unsubmitted ones never submitted."""
        return control.kill(self.id)

    def write(self, path: str | Path) -> Path:
        """The results as CSV (``.csv``) or JSON lines (``.jsonl``), one row per run."""
        return table.write(self.view(), path)


def batch(app: Application, grid: Grid | None = None, runs: int = 1, seeds: Sequence[Any] | None = None,
          rmap: RegionMap = None, engine: str | None = None, group: str | None = None, wait: bool = True,
          timeout: float | None = None, options: Mapping[str, Any] | None = None, regions: int | None = None,
          progress: control.Watcher | None = None) -> Batch:
    """Run ``app`` once per point of ``grid`` (the cartesian product), per seed, ``runs`` times.

    Args:
        app: the application's file, or its XML text; parsed once for the whole batch.
        grid: ``{key: [values]}`` of overrides (``graph:NAME``, ``type:TYPE.NAME``,
            ``device:ID.NAME``, ``state:TYPE.NAME``); every value is checked before anything
            is submitted.
        runs: how many times each grid point (and seed) runs.
        seeds: values for the graph property ``seed`` (refused if the graph type has none).
        rmap, engine, options, regions: as for :func:`pstack_tasks.run`, for every run.
        group: the worker group every run asks for (fair sharing and groups: docs/batches.md).
        wait: return once every run is over (else at once, once every run is queued).
        timeout: give up waiting after this many seconds (TimeoutError; the batch goes on).
        progress: receives the batch's :class:`BatchView` about twice a second while waiting.

    Returns:
        the :class:`Batch`: ``.rows()``, ``.write("out.csv")``, ``.summary()``, ``.kill()``.

    Raises:
        GraphError: the file is malformed, a key names nothing, a value does not fit; nothing
            was submitted.
        ProcessRefused: the fleet can never run it.
    """
    handle = Batch(start(app, grid, runs, seeds, rmap, engine, group, options, regions))
    if wait:
        handle.wait(timeout, progress)
    return handle


def batches(limit: int = 50) -> list[dict[str, Any]]:
    """The newest batches (newest first), each its summary: record, counts per state, state."""
    with store.reporting():
        found = record.ids(limit)
    out = []
    for batch_id in found:
        try:
            out.append(outcomes.view(batch_id).summary())
        except record.BatchNotFound:
            continue  # expired between the two reads
    return out


__all__ = ["Batch", "BatchView", "batch", "batches"]
