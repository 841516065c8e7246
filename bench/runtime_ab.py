#!/usr/bin/env python3
"""Two engine runtimes side by side: the ring scenarios of run_bench.py, taking turns.

    .venv/bin/python bench/runtime_ab.py --base PSIM_A --new PSIM_B [--rounds 7] [--only TEXT]

Each psim builds its engines from its own runtime headers (the build cache key hashes them), so
two source trees give two engines for the same graph.  On a noisy 2-core machine a single run of
each says little: every round runs every scenario with both, in turns (A B, then B A in the next
round, so neither always goes first), and the table gives the median msg/s of each and their
ratio (new / base).  Rates are Delivered messages / the engine's Run seconds.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from run_bench import Psim, Scenario, metric, ring_rmap, write_ring

SCENARIOS = [
    Scenario("single N=4", 4, 1_000_000),
    Scenario("single N=1000", 1000, 1000),
    Scenario("single N=1000 M=10k", 1000, 10_000),
    Scenario("2 regions", 1000, 1000, regions=2),
]


def write_inputs(s: Scenario, tmp: Path) -> tuple[Path, Path | None]:
    xml = tmp / f"ring-{s.n}-{s.m}.xml"
    if not xml.exists():
        with open(xml, "w") as f:
            write_ring(s.n, s.m, f)
    rmap = None
    if s.regions > 1:
        rmap = tmp / f"ring-{s.n}-{s.regions}.rmap.json"
        rmap.write_text(json.dumps(ring_rmap(s.n, s.regions)))
    return xml, rmap


def rate(psim: Psim, s: Scenario, xml: Path, rmap: Path | None) -> float:
    r, doc = psim.run(xml, rmap)
    metrics = (doc or {}).get("metrics", {})
    delivered = metric(metrics, "Delivered messages")
    if r.returncode != 0 or delivered != s.n * s.m:
        raise SystemExit(f"{psim.path} on {s.name}: exit {r.returncode}, delivered {delivered}\n{r.stderr[-500:]}")
    return delivered / metric(metrics, "Run seconds")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", type=Path, required=True, help="psim with the runtime to compare against")
    ap.add_argument("--new", type=Path, required=True, help="psim with the runtime under test")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--only", default=None, help="scenarios whose name contains this text")
    args = ap.parse_args()
    psims = {"base": Psim(args.base, 600.0), "new": Psim(args.new, 600.0)}
    chosen = [s for s in SCENARIOS if not args.only or args.only in s.name]
    rates: dict[tuple[str, str], list[float]] = {(s.name, k): [] for s in chosen for k in psims}
    with tempfile.TemporaryDirectory(prefix="runtime-ab-") as d:
        tmp = Path(d)
        inputs = {s.name: write_inputs(s, tmp) for s in chosen}
        for s in chosen:  # warm the build cache: compiling is not measured
            for p in psims.values():
                rate(p, s, *inputs[s.name])
        for i in range(args.rounds):
            order = ["base", "new"] if i % 2 == 0 else ["new", "base"]
            for s in chosen:
                for k in order:
                    rates[(s.name, k)].append(rate(psims[k], s, *inputs[s.name]))
            print(f"round {i + 1}/{args.rounds} done", file=sys.stderr)
    print("| scenario | base msg/s (median) | new msg/s (median) | new / base | rounds |")
    print("|---|---|---|---|---|")
    for s in chosen:
        base = statistics.median(rates[(s.name, "base")])
        new = statistics.median(rates[(s.name, "new")])
        print(f"| {s.name} | {base / 1e6:.2f} M | {new / 1e6:.2f} M | {new / base:.3f} | {args.rounds} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
