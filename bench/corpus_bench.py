#!/usr/bin/env python3
"""Throughput on real POETS apps (bench/corpus_gen.py) next to the ring-oscillator baseline.

    .venv/bin/python bench/corpus_bench.py [--psim PATH] [--repeats N] [--out FILE]

Each app is generated at a size that runs about a second, then run with ``psim -q -r
--no-states`` in one region; the table gives the engine's delivered messages per second of
``Run seconds`` (best of ``--repeats`` runs), and checks the run ended as the app intends
(success marker, exit code 0; quiescence for the ring).  See bench/README.md.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import corpus_gen  # noqa: E402
from ring import write_ring  # noqa: E402

DEFAULT_PSIM = HERE.parent / ".venv" / "bin" / "psim"

#: name, generator, sizes, expected (exit reason, exit code)
WORKLOADS: list[tuple[str, Callable[..., None], tuple[int, ...], tuple[str, int]]] = [
    ("ring N=1000 M=100000 (baseline)", lambda f, n, m: write_ring(n, m, f), (1000, 100_000), ("quiescence", 0)),
    ("clock_tree depth 6 fanout 4, 10000 ticks", corpus_gen.clock_tree, (6, 4, 10_000), ("handler_exit", 0)),
    ("ising_spin_fix 64x64, endTime 1e9", corpus_gen.ising_spin_fix, (64, 64, 1_000_000_000), ("handler_exit", 0)),
    ("apsp 2048 nodes, degree 4", corpus_gen.apsp, (2048, 4), ("handler_exit", 0)),
]


def run_psim(psim: str, path: Path) -> dict[str, Any]:
    out = subprocess.run([psim, "-q", "-r", "--no-states", str(path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["metrics"]  # type: ignore[no-any-return]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--psim", default=str(DEFAULT_PSIM))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(HERE / "out" / "corpus.json"))
    args = parser.parse_args()
    rows = []
    ok = True
    with tempfile.TemporaryDirectory(prefix="pstack-corpus-bench-") as tmp:
        for name, gen, sizes, want in WORKLOADS:
            path = Path(tmp) / "app.xml"
            with open(path, "w") as f:
                gen(f, *sizes)
            run_psim(args.psim, path)  # warm the engine cache
            best = min((run_psim(args.psim, path) for _ in range(args.repeats)), key=lambda m: m["Run seconds"])
            got = (best["Exit reason"], best["Exit code"])
            rate = best["Delivered messages"] / best["Run seconds"]
            rows.append({"workload": name, "delivered": best["Delivered messages"], "sent": best["Sent messages"],
                         "run_seconds": best["Run seconds"], "msgs_per_second": rate, "ended": got,
                         "xml_bytes": path.stat().st_size})
            ok = ok and got == want
            print(f"--- {name}: {best['Delivered messages']:,} delivered in {best['Run seconds']:.3f} s "
                  f"= {rate / 1e6:.1f} M/s, ended {got}{'' if got == want else f' (expected {want}) FAIL'}",
                  flush=True)
    print("\n| workload | delivered | run s | deliveries/s | ended |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['workload']} | {r['delivered']:,} | {r['run_seconds']:.3f} | {r['msgs_per_second'] / 1e6:.1f} M "
              f"| {r['ended'][0]} ({r['ended'][1]}) |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
