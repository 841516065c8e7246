"""pcli's built-ins for batches: batch, batches, batch_show, batch_kill, plot_batch.

Each is the Python API (:mod:`pstack_tasks.fleet.batches`, :mod:`pstack_tasks.ui.batch_plot`)
with its value shown as pcli shows values: a batch's runs as a table whose value is the list of
row dicts (``pd.DataFrame(batch(...))`` is its CSV), batches as a table of summaries.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.text import Text

from pstack_tasks.fleet import batches as api
from pstack_tasks.fleet.batches import table
from pstack_tasks.fleet.batches.outcomes import BatchView
from pstack_tasks.ui.batch_plot import plot_batch
from pstack_tasks.ui.batch_view import BatchProgress, batch_table, describe, run_table
from pstack_tasks.ui.shell.display import Table


def _runs(view: BatchView, metrics: Sequence[str] = ()) -> Table:
    return Table(table.rows(view), Group(Text(describe(view)), run_table(view, metrics)))


def batch(app: str | os.PathLike[str], grid: Mapping[str, Sequence[Any]] | None = None, runs: int = 1,
          seeds: Sequence[Any] | None = None, rmap: Mapping[str, int] | None = None, engine: str | None = None,
          group: str | None = None, wait: bool = True, options: Mapping[str, Any] | None = None,
          progress: bool = True) -> Any:
    """Run app over a grid of overrides: batch(app, grid={"type:cell.limit": [10, 20]}, runs=3, seeds=[1, 2]).

    Waits with a progress bar and returns the runs as a table (a list of row dicts, the CSV's
    columns); wait=False returns the Batch at once (.id, .rows(), .write("out.csv"), .kill()).
    """
    handle = api.batch(app, grid=grid, runs=runs, seeds=seeds, rmap=rmap, engine=engine, group=group, wait=False,
                       options=options)
    if not wait:
        return handle
    with ExitStack() as stack:
        watcher = stack.enter_context(BatchProgress()).update if progress else None
        try:
            view = handle.wait(progress=watcher)
        except KeyboardInterrupt:
            raise KeyboardInterrupt(f"batch {handle.id} goes on; batch_kill({handle.id}) stops it") from None
    return _runs(view)


def batches(limit: int = 20) -> Table:
    """The newest batches as a table: state, owner, group, runs done / failed / running / waiting."""
    found = api.batches(limit)
    return Table(found, batch_table(found))


def batch_show(batch_id: int, metrics: Sequence[str] = ()) -> Table:
    """One batch's runs as a table (a list of row dicts): parameters, run, seed, pid, state, metrics."""
    return _runs(api.Batch(int(batch_id)).view(), metrics)


def batch_kill(batch_id: int) -> str:
    """Kill a batch: running runs are killed, waiting ones dropped; the batch's line afterwards."""
    return describe(api.Batch(int(batch_id)).kill())


def batch_plot(batch_id: int, x: str, y: str = "Delivered messages", out: str | None = None) -> Path:
    """Plot a metric against a grid key (mean and spread over runs) to a .png or .svg file."""
    return plot_batch(int(batch_id), x, y, out)


BATCH_BUILTINS: dict[str, Callable[..., Any]] = {
    "batch": batch, "batches": batches, "batch_show": batch_show, "batch_kill": batch_kill, "plot_batch": batch_plot,
}

__all__ = ["BATCH_BUILTINS", "batch", "batches", "batch_show", "batch_kill", "batch_plot"]
