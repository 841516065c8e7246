"""Automatic partitioning: the cut and the engine speed of a METIS split against round-robin and
contiguous-id splits, with 1 region run beside them, all in the same run.

Workloads: gals_heat_fix 300x300, maxTime 1500 (../shared/data/bench, 90k devices; with --quick
the corpus's gals_heat_fix_8_20) and the corpus's clock_tree_4_4; each split into 2 and 4
regions by each method.  Each application is parsed once; the runs take turns in rounds
(``--rounds``: 1 region, then every split, then again), and the figures are medians over the
rounds.  The engine time is the merged result's "Run seconds" (the slowest region).  A split
whose run passes ``--time-limit`` is stopped there (round-robin on a big grid sends half its
messages through Redis): its time is then a lower bound, and marked so.

Figures (bench/figures.py), baseline = round-robin in the same run: the cut fraction (remote
edges / all edges) and the engine run seconds of each method; also 1 region's engine seconds
and METIS's split time.

    .venv/bin/python bench/partition_bench.py [--quick] [--rounds 2] [--time-limit 30]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data_paths import BIG_GALS, CORPUS  # noqa: E402
from figures import Figure, write_figures  # noqa: E402

from pstack_tasks.exceptions import PstackError  # noqa: E402
from pstack_tasks.graph import partition  # noqa: E402
from pstack_tasks.native.local_run import run_regions  # noqa: E402
from pstack_tasks.native.options import RunOptions  # noqa: E402
from pstack_tasks.native.prepare import Prepared, prepare  # noqa: E402
from pstack_tasks.native.region_run import run_single  # noqa: E402
from pstack_tasks.protocol import ExitReason  # noqa: E402

METHODS = partition.METHODS  # metis, round-robin, contiguous


def workloads(quick: bool) -> dict[str, Path]:
    gals = CORPUS / "gals_heat_fix_8_20.xml" if quick else BIG_GALS  # the .xml.gz, read as it is
    return {"gals_heat": gals, "clock_tree": CORPUS / "clock_tree_4_4.xml"}


def engine_seconds(prep: Prepared, rmap: dict[str, int] | None, limit: float) -> tuple[float, bool, int]:
    """(engine run seconds of the slowest region, stopped by the limit, messages delivered)."""
    opts = RunOptions(quiet=True, states=False, time_limit=limit)
    try:
        result = run_regions(prep, rmap, opts) if rmap else run_single(prep, opts)
    except PstackError as e:  # a split stopped by the limit fails the run: its time is a lower bound
        if "time limit" not in str(e):
            raise
        return limit, True, 0
    m: dict[str, Any] = result["metrics"]
    return float(m["Run seconds"]), m["Exit reason"] == ExitReason.TIME_LIMIT, int(m["Delivered messages"])


def bench_workload(name: str, path: Path, ks: list[int], rounds: int, limit: float) -> tuple[list[Figure], dict]:
    t0 = time.perf_counter()
    prep = prepare(path)
    load = time.perf_counter() - t0
    inst = prep.app.instance
    splits: dict[tuple[int, str], dict[str, int]] = {}
    reports: dict[tuple[int, str], partition.PartitionReport] = {}
    for k in ks:
        for method in METHODS:
            parts, reports[k, method] = partition.split(inst, k, method)
            splits[k, method] = {inst.names[i]: r for i, r in enumerate(parts) if r}
            print(f"{name}: {reports[k, method].describe()}", flush=True)
    times: dict[str, list[float]] = {}
    limited: set[str] = set()
    for _ in range(rounds):
        secs, alone_stopped, delivered = engine_seconds(prep, None, limit)
        times.setdefault("1", []).append(secs)
        if alone_stopped:
            limited.add("1")
        for (k, method), rmap in splits.items():
            secs, stopped, got = engine_seconds(prep, rmap, limit)
            times.setdefault(f"{k}/{method}", []).append(secs)
            if stopped:
                limited.add(f"{k}/{method}")
            elif got != delivered and not alone_stopped:
                raise SystemExit(f"{name} {k}/{method}: {got} messages delivered, 1 region delivered {delivered}")
            print(f"{name}: {k} regions {method}: engine {secs:.3f} s{' (time limit)' if stopped else ''}",
                  flush=True)
    med = {key: statistics.median(v) for key, v in times.items()}
    figures = [Figure(f"{name}: 1 region engine seconds", med["1"], "s", higher_is_better=False)]
    for k in ks:
        rr = reports[k, "round-robin"]
        for method in METHODS:
            rep, key = reports[k, method], f"{k}/{method}"
            figures.append(Figure(f"{name}: {k} regions {method} cut fraction", round(rep.cut, 6), "fraction",
                                  higher_is_better=False, baseline=round(rr.cut, 6), baseline_name="round-robin"))
            figures.append(Figure(f"{name}: {k} regions {method} engine seconds", med[key], "s",
                                  higher_is_better=False, baseline=med[f"{k}/round-robin"],
                                  baseline_name="round-robin" + (" (stopped at the time limit)"
                                                                 if f"{k}/round-robin" in limited else ""),
                                  target="lower bound: stopped at the time limit" if key in limited else ""))
        figures.append(Figure(f"{name}: {k} regions metis split seconds", reports[k, "metis"].seconds, "s",
                              higher_is_better=False))
    details = {"devices": inst.device_count, "edges": inst.edge_count, "load_seconds": round(load, 2),
               "medians": med, "limited": sorted(limited),
               "reports": {f"{k}/{m}": r.as_dict() for (k, m), r in reports.items()}}
    return figures, details


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="corpus workloads only, one round (seconds)")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default: 2, quick: 1)")
    ap.add_argument("--time-limit", type=float, default=30.0,
                    help="stop a run after S seconds (round-robin on the big grid takes minutes: "
                         "its figure is then a lower bound)")
    ap.add_argument("--only", default="", help="only workloads whose name contains this")
    args = ap.parse_args()
    rounds = args.rounds or (1 if args.quick else 2)
    figures: list[Figure] = []
    details: dict[str, Any] = {}
    for name, path in workloads(args.quick).items():
        if args.only in name:
            got, details[name] = bench_workload(name, path, [2, 4], rounds, args.time_limit)
            figures += got
    out = write_figures("partition_bench", figures, quick=args.quick,
                        rounds=rounds, details=details)
    for f in figures:
        ratio = f" (x{f.ratio:.2f} vs {f.baseline_name})" if f.ratio else ""
        print(f"{f.name}: {f.value:g} {f.unit}{ratio}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
