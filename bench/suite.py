#!/usr/bin/env python3
"""Every benchmark in one run, each figure beside its in-run baseline, compared with the committed
baseline (bench/baseline.json).

    .venv/bin/python bench/suite.py [--quick] [--only TEXT] [--update-baseline] [--no-run]

The scripts: those in :data:`KNOWN` first, then every other ``bench/*_bench.py`` that accepts
``--quick`` and reports with bench/figures.py (``write_figures``), so a new script joins without
editing this file.  Each script is run with ``--quick`` when the suite is; the figure files it
wrote (``bench/out/*.json`` with a ``figures`` list, written during its run) are read back.

A figure is a regression when it is more than :data:`TOLERANCE` (20%) worse than the committed
baseline: its ratio to the in-run baseline is compared when both have one (a ratio moves much less
than a raw rate on a shared, noisy machine), its raw value otherwise.  A regression, a figure of
the baseline that this run did not produce, or a script that wrote no figures makes the exit
status 1, naming them.  ``--update-baseline`` rewrites the baseline of this mode (quick or full)
from this run instead.  The baseline keeps the quick and full runs apart: their sizes differ, so
do their figures.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from figures import OUT, Figure, machine_load, read_figures  # noqa: E402

BASELINE = HERE / "baseline.json"
#: scripts run first, in this order (the rest are discovered)
KNOWN = ("run_bench.py", "processes_bench.py")
#: how much worse than the baseline a figure may be before it is a regression
TOLERANCE = 0.20


def discover(bench_dir: Path = HERE) -> list[Path]:
    """The bench scripts the suite runs: :data:`KNOWN`, then every ``*_bench.py`` whose source
    takes ``--quick`` and calls ``write_figures``."""
    known = [bench_dir / name for name in KNOWN if (bench_dir / name).is_file()]
    found = []
    for path in sorted(bench_dir.glob("*_bench.py")):
        if path in known:
            continue
        text = path.read_text(errors="replace")
        if "--quick" in text and "write_figures" in text:
            found.append(path)
    return known + found


@dataclass
class ScriptRun:
    """One script's run: its exit status, seconds, and the figures it wrote.  ``script`` is the
    file's stem (``processes_bench``), the name it passes to ``write_figures``."""

    script: str
    returncode: int
    seconds: float
    figures: list[Figure]
    files: list[Path]


def run_script(path: Path, quick: bool, out_dir: Path = OUT) -> ScriptRun:
    """Run one bench script (its output goes to ours) and read the figure files it wrote."""
    before = {p: p.stat().st_mtime_ns for p in out_dir.glob("*.json")} if out_dir.is_dir() else {}
    argv = [sys.executable, str(path)] + (["--quick"] if quick else [])
    print(f"== {path.name}: {' '.join(argv[1:])}", flush=True)
    t0 = time.monotonic()
    rc = subprocess.call(argv, cwd=path.parent.parent)
    seconds = time.monotonic() - t0
    figures: list[Figure] = []
    files = []
    for p in sorted(out_dir.glob("*.json")) if out_dir.is_dir() else []:
        if before.get(p) == p.stat().st_mtime_ns:
            continue
        try:
            doc = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(doc, dict) and isinstance(doc.get("figures"), list):
            figures += read_figures(p)
            files.append(p)
    return ScriptRun(path.stem, rc, seconds, figures, files)


@dataclass
class Verdict:
    """A figure against the committed baseline: ``status`` is ok, regression, better, new or missing."""

    name: str
    status: str
    detail: str


def compare(figures: list[Figure], baseline: dict[str, dict[str, Any]], tolerance: float = TOLERANCE) -> list[Verdict]:
    """Each figure of this run against its committed baseline entry, and every entry this run lacks.

    Ratios (figure / in-run baseline, > 1 better) are compared when both sides have one; raw values
    otherwise, in the figure's direction.  Worse by more than ``tolerance``: a regression.
    """
    out = []
    seen = set()
    for f in figures:
        seen.add(f.name)
        base = baseline.get(f.name)
        if base is None:
            out.append(Verdict(f.name, "new", "not in the baseline"))
            continue
        if f.ratio is not None and base.get("ratio"):
            now, then, what, higher = f.ratio, float(base["ratio"]), "ratio", True
        elif base.get("value") is not None:
            now, then, what, higher = f.value, float(base["value"]), "value", f.higher_is_better
        else:
            out.append(Verdict(f.name, "new", "the baseline has no value for it"))
            continue
        change = _change(now, then, higher)
        status = "regression" if change < -tolerance else "better" if change > tolerance else "ok"
        out.append(Verdict(f.name, status, f"{what} {_num(now)} against {_num(then)} ({change:+.0%})"))
    for name in baseline:
        if name not in seen:
            out.append(Verdict(name, "missing", "in the baseline, not produced by this run"))
    return out


def _change(now: float, then: float, higher_is_better: bool) -> float:
    """How much better ``now`` is than ``then``, relative to ``then`` (+0.1: 10% better, -0.25: 25%
    worse: a rate a quarter lower, or a time a quarter longer)."""
    if then == 0:
        return 0.0 if now == 0 else (1.0 if (now > 0) == higher_is_better else -1.0)
    return now / then - 1 if higher_is_better else 1 - now / then


def failures(verdicts: list[Verdict]) -> list[Verdict]:
    """The verdicts that fail the suite: regressions and missing figures."""
    return [v for v in verdicts if v.status in ("regression", "missing")]


def _num(x: float | None) -> str:
    if x is None:
        return "-"
    a = abs(x)
    if a >= 1e6:
        return f"{x / 1e6:.2f}M"
    if a >= 1e4:
        return f"{x / 1e3:.1f}k"
    if a >= 100:
        return f"{x:.0f}"
    return f"{x:.3g}"


def table(figures: list[Figure], verdicts: list[Verdict]) -> str:
    """One markdown table: every figure beside its in-run baseline, its target, and the comparison."""
    by_name = {v.name: v for v in verdicts}
    head = ["figure", "value", "unit", "baseline", "ratio", "target", "pass", "vs committed"]
    rows = []
    for f in figures:
        v = by_name.get(f.name)
        rows.append([f.name, _num(f.value), f.unit,
                     f"{_num(f.baseline)} ({f.baseline_name})" if f.baseline is not None else "-",
                     "-" if f.ratio is None else f"{f.ratio:.3f}", f.target or "-",
                     {True: "PASS", False: "FAIL", None: "-"}[f.passed],
                     "-" if v is None else f"{v.status}: {v.detail}"])
    widths = [max(len(str(c)) for c in col) for col in zip(head, *rows)]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(head), sep] + [line(r) for r in rows])


def load_baseline(path: Path, mode: str) -> dict[str, dict[str, Any]]:
    """The committed figures of ``mode`` ("quick" or "full"): name -> value, ratio, ..."""
    if not path.is_file():
        return {}
    doc = json.loads(path.read_text())
    return dict(doc.get(mode, {}).get("figures", {}))


def save_baseline(path: Path, mode: str, runs: list[ScriptRun]) -> None:
    """Rewrite ``mode``'s part of the baseline file from ``runs``: the figures of the scripts that
    ran and wrote figures are replaced, the other scripts' figures and the other mode are kept."""
    doc = json.loads(path.read_text()) if path.is_file() else {}
    ran = {run.script for run in runs if run.figures}
    kept = {name: entry for name, entry in doc.get(mode, {}).get("figures", {}).items()
            if entry.get("script") not in ran}
    for run in runs:
        for f in run.figures:
            kept[f.name] = {"script": run.script, "value": f.value, "ratio": f.ratio, "unit": f.unit,
                            "higher_is_better": f.higher_is_better}
    doc[mode] = {"machine": machine_load(), "figures": kept}
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")


def judge(runs: list[ScriptRun], baseline_path: Path, mode: str, update: bool,
          tolerance: float = TOLERANCE) -> int:
    """Print the table and the verdict of a suite run; its exit status.  Only the baseline's
    figures of the scripts that ran are expected (``--only``)."""
    figures = [f for run in runs for f in run.figures]
    ran = {run.script for run in runs}
    baseline = {name: entry for name, entry in load_baseline(baseline_path, mode).items()
                if entry.get("script") in ran or "script" not in entry}
    verdicts = compare(figures, baseline, tolerance)
    print()
    print(table(figures, verdicts))
    load = machine_load()["loadavg"]
    print(f"\nmachine load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({mode} run)")
    broken = [run.script for run in runs if not run.figures]
    for name in broken:
        print(f"FAIL: {name} wrote no figures")
    if update:
        save_baseline(baseline_path, mode, runs)
        print(f"baseline ({mode}) rewritten: {baseline_path} ({len(figures)} figures)")
        return 1 if broken else 0
    bad = failures(verdicts)
    for v in bad:
        print(f"FAIL: {v.name}: {v.status}: {v.detail}")
    if not bad and not broken:
        print(f"every figure within {tolerance:.0%} of the committed baseline")
    return 1 if bad or broken else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="pass --quick to every script (seconds each)")
    ap.add_argument("--only", default=None, help="run only the scripts whose name contains this text")
    ap.add_argument("--update-baseline", action="store_true", help="rewrite bench/baseline.json from this run")
    ap.add_argument("--baseline", type=Path, default=BASELINE)
    ap.add_argument("--tolerance", type=float, default=TOLERANCE,
                    help="how much worse than the baseline a figure may be (default %(default)s: 20%%)")
    ap.add_argument("--no-run", nargs="*", type=Path, metavar="FILE",
                    help="run nothing: judge these figure files (bench/out/*.json) instead")
    args = ap.parse_args(argv)
    mode = "quick" if args.quick else "full"
    if args.no_run is not None:
        runs = [ScriptRun(p.stem, 0, 0.0, read_figures(p), [p]) for p in args.no_run]
    else:
        scripts = [p for p in discover() if args.only is None or args.only in p.name]
        runs = [run_script(p, args.quick) for p in scripts]
        for run in runs:
            print(f"{run.script}: exit {run.returncode} in {run.seconds:.1f} s, {len(run.figures)} figures")
    return judge(runs, args.baseline, mode, args.update_baseline, args.tolerance)


if __name__ == "__main__":
    sys.exit(main())
