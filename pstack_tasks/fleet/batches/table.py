"""A batch's results as rows, and as files that pandas reads as they are.

One row per run: a column per grid key as written (``type:cell.limit``), then ``run``, ``seed``,
``pid``, ``state``, then every metric under its own name (``Delivered messages``, ``Exit code``,
...; the union over the runs, in the order first met), then ``seconds`` and ``reason``.  CSV
(``pd.read_csv``) or JSON lines (``pd.read_json(path, lines=True)``), chosen by the extension.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from pstack_tasks.exceptions import ConfigurationError
from pstack_tasks.fleet.batches.outcomes import BatchView

#: the columns between the grid keys and the metrics
RUN_COLUMNS = ("run", "seed", "pid", "state")
#: the columns after the metrics
TAIL_COLUMNS = ("seconds", "reason")
#: file extensions and the format each one means
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}


def columns(batch: BatchView) -> list[str]:
    """Every column, in order."""
    keys = list(batch.record.get("grid") or {})
    metrics: dict[str, None] = {}
    for run in batch.runs:
        metrics.update(dict.fromkeys(run.metrics))
    return [*keys, *RUN_COLUMNS, *[m for m in metrics if m not in keys], *TAIL_COLUMNS]


def rows(batch: BatchView) -> list[dict[str, Any]]:
    """One dict per run, with every column (None where a run has no value)."""
    cols = columns(batch)
    out = []
    for run in batch.runs:
        row: dict[str, Any] = dict.fromkeys(cols)
        row.update(run.params)
        row.update(run=run.run, seed=run.seed, pid=run.pid, state=run.state)
        row.update({k: v for k, v in run.metrics.items() if k in row})
        row.update(seconds=run.elapsed, reason=run.reason)
        out.append(row)
    return out


def write(batch: BatchView, path: str | Path) -> Path:
    """Write the batch's rows to ``path``: CSV for ``.csv``, JSON lines for ``.jsonl``/``.json``.

    Raises:
        ConfigurationError: another extension (the message names the ones known).
    """
    path = Path(path)
    kind = file_format(path)
    table = rows(batch)
    with open(path, "w", newline="") as f:
        if kind == "csv":
            writer = csv.DictWriter(f, fieldnames=columns(batch))
            writer.writeheader()
            for row in table:
                writer.writerow({k: _cell(v) for k, v in row.items()})
        else:
            for row in table:
                f.write(json.dumps(row) + "\n")
    return path


def file_format(path: str | Path) -> str:
    """``"csv"`` or ``"jsonl"``, by the file's extension (checked before a batch starts).

    Raises:
        ConfigurationError: another extension (the message names the ones known).
    """
    path = Path(path)
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise ConfigurationError(f"--out {path}: unknown extension {path.suffix!r}; use " + ", ".join(FORMATS))
    return kind


def _cell(value: Any) -> Any:
    """A CSV cell: lists and objects (array members) as JSON, None as empty."""
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return "" if value is None else value


__all__ = ["RUN_COLUMNS", "TAIL_COLUMNS", "FORMATS", "columns", "rows", "write", "file_format"]
