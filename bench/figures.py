"""Figures a benchmark reports, in one shape, so that bench/suite.py can print every figure beside
its in-run baseline and compare a run with the committed baseline file (bench/baseline.json).

Each bench script writes ``bench/out/<script>.json`` with :func:`write_figures`; a figure names
what it measures, its value, whether higher is better, the same run's baseline figure (the hand
loop, one region, Celery's no-op chord...) when there is one, and the issue's target.
"""
from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "out"


@dataclass
class Figure:
    """One measured figure: ``name`` is stable across runs (the baseline file is keyed by it)."""

    name: str
    value: float
    unit: str
    higher_is_better: bool = True
    baseline: float | None = None        # the same run's baseline figure, same unit
    baseline_name: str = ""              # what the baseline is ("hand-written loop", "1 region")
    target: str = ""                     # the target, as text ("ratio >= 0.5", "< 5 s")
    passed: bool | None = None           # the target met (None: report only)

    @property
    def ratio(self) -> float | None:
        """value / baseline (or baseline / value when lower is better): > 1 is better than baseline."""
        if not self.baseline or not self.value:
            return None
        return self.value / self.baseline if self.higher_is_better else self.baseline / self.value


def machine_load() -> dict[str, Any]:
    """What the machine was doing: load averages and cores, recorded beside the figures."""
    try:
        load = os.getloadavg()
    except OSError:
        load = (0.0, 0.0, 0.0)
    return {"loadavg": list(load), "cpus": os.cpu_count(), "host": platform.node(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S")}


def write_figures(script: str, figures: list[Figure], path: Path | None = None, **extra: Any) -> Path:
    """Write ``figures`` (and ``extra`` details) to ``bench/out/<script>.json``; returns the path."""
    path = path or OUT / f"{script}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"script": script, "machine": machine_load(),
           "figures": [dict(asdict(f), ratio=f.ratio) for f in figures], **extra}
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


def read_figures(path: Path) -> list[Figure]:
    """The figures of a file :func:`write_figures` wrote."""
    doc = json.loads(path.read_text())
    return [Figure(**{k: v for k, v in f.items() if k != "ratio"}) for f in doc["figures"]]
