"""What people see of batches: the runs of one batch as a table, the list of batches, and the
live progress bar while a batch is waited for (rich, as the other views)."""
from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from pstack_tasks.fleet.batches.outcomes import OVER, BatchView
from pstack_tasks.fleet.batches.table import rows
from pstack_tasks.ui.columns import Column, Row, elapsed, field
from pstack_tasks.ui.tables import table

#: the metrics every run row shows; more with --metric
SHOWN_METRICS = ("Delivered messages", "Exit code")
STATE_STYLES = {"Submitted": "cyan", "Waiting": "yellow", "Running": "green", "Done": "blue", "Failed": "bold red",
                "Killed": "magenta", "Expired": "dim", "Submitting": "cyan"}


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)


def _value(name: str) -> Any:
    return lambda row: _cell(row.get(name))


def _state_style(row: Row) -> str:
    return STATE_STYLES.get(str(row.get("state")), "")


def run_table(batch: BatchView, metrics: Sequence[str] = ()) -> Table:
    """One row per run: its parameters, run, seed, pid, state, delivered, exit code, the chosen
    ``metrics``, its time and (for a run that did not end Done) the reason."""
    keys = list(batch.record.get("grid") or {})
    cols = [Column(k, _value(k), "right") for k in keys]
    cols += [Column("RUN", _value("run"), "right"), Column("SEED", _value("seed"), "right"),
             Column("PID", _value("pid"), "right"), Column("STATE", field("state"), style=_state_style),
             Column("DELIVERED", _value("delivered"), "right"), Column("EXIT", _value("Exit code"), "right")]
    cols += [Column(m, _value(m), "right") for m in metrics if m not in SHOWN_METRICS]
    cols += [Column("TIME", lambda r: elapsed(r.get("seconds")), "right"), Column("REASON", field("reason", ""),
                                                                                   free=True)]
    table_rows = []
    for run, row in zip(batch.runs, rows(batch)):
        table_rows.append({**row, "delivered": run.delivered})
    return table(cols, table_rows)


BATCH_COLUMNS: tuple[Column, ...] = (
    Column("ID", field("id"), "right"),
    Column("STATE", field("state"), style=_state_style),
    Column("USER", field("user")),
    Column("GROUP", field("group")),
    Column("RUNS", field("total"), "right"),
    Column("DONE", lambda b: str(b["counts"].get("Done", 0)), "right"),
    Column("FAILED", lambda b: str(sum(b["counts"].get(s, 0) for s in ("Failed", "Killed", "Expired"))), "right"),
    Column("RUNNING", lambda b: str(b["counts"].get("Running", 0)), "right"),
    Column("WAITING", lambda b: str(b["counts"].get("Waiting", 0) + b["counts"].get("Submitted", 0)), "right"),
    Column("ELAPSED", lambda b: elapsed(_batch_seconds(b)), "right"),
    Column("GRAPH", field("graph_type"), free=True),
    Column("GRID", lambda b: ", ".join(f"{k}={len(v)}" for k, v in (b.get("grid") or {}).items()) or "-", free=True),
)


def _batch_seconds(summary: Row) -> float | None:
    import time
    start = summary.get("submitted")
    return None if not start else float(summary.get("ended") or time.time()) - float(start)


def batch_table(summaries: Sequence[Row]) -> Table:
    """``pstack batches``: one row per batch, newest first."""
    return table(BATCH_COLUMNS, summaries)


def describe(batch: BatchView) -> str:
    """One line for a batch: its state and counts, for the progress bar and plain output."""
    c = batch.counts
    failed = c["Failed"] + c["Killed"] + c["Expired"]
    return (f"batch {batch.record['id']} {batch.state}: {c['Done']} done, {failed} failed, {c['Running']} running, "
            f"{c['Waiting'] + c['Submitted']} waiting")


class BatchProgress:
    """A context manager whose ``update(view)`` redraws a progress bar on stderr: runs over out of
    all, done / failed / running / waiting, elapsed and ETA; plain lines when stderr is no terminal."""

    def __init__(self) -> None:
        self.console = Console(file=sys.stderr, highlight=False)
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=self.console,
                                 transient=False)
        self.task = self.progress.add_task("submitting ...", total=None)
        self.last = ""

    def __enter__(self) -> BatchProgress:
        if self.console.is_terminal:
            self.progress.start()
        return self

    def update(self, batch: BatchView) -> None:
        line = describe(batch)
        over = sum(1 for run in batch.runs if run.state in OVER)
        self.progress.update(self.task, description=line, total=batch.total, completed=over)
        if not self.console.is_terminal and line != self.last:
            print(line, file=sys.stderr, flush=True)
        self.last = line

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        if self.console.is_terminal:
            self.progress.stop()


__all__ = ["SHOWN_METRICS", "run_table", "batch_table", "describe", "BatchProgress", "BATCH_COLUMNS"]
