"""Plots of a batch: a metric against a grid key, the mean over runs with their spread
(docs/batches.md, "Plots").

matplotlib is an optional extra (``pip install 'pstack-celery[plot]'``), imported only here and
only when a plot is drawn, with the Agg backend (no display needed): PNG or SVG by the extension.
"""
from __future__ import annotations

import importlib.util
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pstack_tasks.exceptions import ConfigurationError
from pstack_tasks.fleet.batches import Batch, table

#: file extensions a plot may be written as
PLOT_FORMATS = (".png", ".svg")

Series = dict[tuple[Any, ...], dict[Any, list[float]]]


def plot_batch(batch: Batch | int, x: str, y: str = "Delivered messages", out: str | Path | None = None,
               title: str | None = None) -> Path:
    """Draw metric ``y`` against grid key ``x`` for a batch: one line per combination of the other
    grid keys, each point the mean over the runs that ended Done, its error bar their standard
    deviation (and min-max as a thin band).  Written to ``out`` (default ``batch-<id>.png``).

    Raises:
        ConfigurationError: matplotlib is missing, ``x`` is not a grid key (or ``run``/``seed``),
            ``y`` is not a column, no run has ended Done, or ``out`` is not .png/.svg.
        BatchNotFound: no such batch.
    """
    handle = batch if isinstance(batch, Batch) else Batch(int(batch))
    path = Path(out) if out is not None else Path(f"batch-{handle.id}.png")
    if path.suffix.lower() not in PLOT_FORMATS:
        raise ConfigurationError(f"plot {path}: unknown extension {path.suffix!r}; use .png or .svg")
    if importlib.util.find_spec("matplotlib") is None:
        raise ConfigurationError("plots need matplotlib, which this installation lacks: "
                                 "pip install 'pstack-celery[plot]'")
    view = handle.view()
    keys = list(view.record.get("grid") or {})
    series = collect(table.rows(view), keys, x, y)
    _draw(series, [k for k in keys if k != x], x, y, title or f"batch {handle.id}: {view.record.get('app')}", path)
    return path


def collect(rows: Sequence[Mapping[str, Any]], keys: Sequence[str], x: str, y: str) -> Series:
    """``{other keys' values: {x value: [y of each Done run]}}``, checking the names."""
    if x not in (*keys, "run", "seed"):
        raise ConfigurationError(f"plot: --x {x!r} is not a grid key of the batch (grid keys: "
                                 f"{', '.join(keys) or 'none'}; also run, seed)")
    if rows and y not in rows[0]:
        raise ConfigurationError(f"plot: --y {y!r} is not a column of the batch (columns: {', '.join(rows[0])})")
    others = [k for k in keys if k != x]
    series: Series = {}
    for row in rows:
        value = row.get(y)
        if row.get("state") != "Done" or not isinstance(value, (int, float)):
            continue
        line = tuple(_hashable(row.get(k)) for k in others)
        series.setdefault(line, {}).setdefault(_hashable(row.get(x)), []).append(float(value))
    if not series:
        raise ConfigurationError(f"plot: no run of the batch ended Done with a number for {y!r}")
    return series


def _hashable(v: Any) -> Any:
    return repr(v) if isinstance(v, (list, dict)) else v


def stats(values: Sequence[float]) -> tuple[float, float, float, float]:
    """(mean, sample standard deviation, min, max) of one point's runs."""
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return mean, sd, min(values), max(values)


def _draw(series: Series, others: Sequence[str], x: str, y: str, title: str, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    try:
        for line, points in sorted(series.items(), key=lambda kv: repr(kv[0])):
            xs = sorted(points, key=lambda v: (not isinstance(v, (int, float)), v if isinstance(v, (int, float))
                                               else repr(v)))
            st = [stats(points[v]) for v in xs]
            label = ", ".join(f"{k}={v}" for k, v in zip(others, line)) or y
            ax.errorbar(range(len(xs)) if _categorical(xs) else xs, [s[0] for s in st], yerr=[s[1] for s in st],
                        marker="o", capsize=4, label=label)
            ax.fill_between(range(len(xs)) if _categorical(xs) else xs, [s[2] for s in st], [s[3] for s in st],
                            alpha=0.15)
            if _categorical(xs):
                ax.set_xticks(range(len(xs)), [str(v) for v in xs])
        ax.set_xlabel(x)
        ax.set_ylabel(f"{y} (mean ± sd over runs)")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        if others:
            ax.legend()
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)


def _categorical(xs: Sequence[Any]) -> bool:
    return not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in xs)


__all__ = ["PLOT_FORMATS", "plot_batch", "collect", "stats"]
