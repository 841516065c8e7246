#!/usr/bin/env python3
"""Instructions per delivered message of the single-region engine, counted by valgrind's cachegrind
(issue 17, item 5): a figure the shared machine's load does not move, to decide engine changes by.

    .venv/bin/python bench/engine_instructions.py [--new PSIM] [--base PSIM]

For each ring (bench/ring.py) the engine binary that each psim builds from its own runtime runs
alone under `valgrind --tool=cachegrind --cache-sim=no` on its instance file (start-up and loading
included, a few tens of thousands of instructions), beside the hand-written loop
(bench/ring_loop.c, gcc -O2) on the same ring.  With --base, the corpus apps clock_tree, apsp and
ising_spin_fix (bench/corpus_gen.py) are counted too, new against base.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import corpus_gen  # noqa: E402
from figures import Figure, write_figures  # noqa: E402
from ring import write_ring  # noqa: E402
from run_bench import compile_loop, metric, parse_psim_json  # noqa: E402

DEFAULT_PSIM = HERE.parent / ".venv" / "bin" / "psim"
#: name, N, M
RINGS = [("ring 4x250k", 4, 250_000), ("ring 1000x1000", 1000, 1000)]
CORPUS: list[tuple[str, Callable[[Path], None]]] = [
    ("clock_tree 4x4 200 ticks", lambda p: p.write_text(_text(corpus_gen.clock_tree, 4, 4, 200))),
    ("apsp 128 nodes", lambda p: p.write_text(_text(corpus_gen.apsp, 128, 4))),
    ("ising_spin_fix 32x32", lambda p: p.write_text(_text(corpus_gen.ising_spin_fix, 32, 32, 200_000_000))),
]


def _text(gen: Callable[..., None], *sizes: int) -> str:
    import io
    out = io.StringIO()
    gen(out, *sizes)
    return out.getvalue()


def instructions(cmd: list[str]) -> tuple[int, str]:
    """Instructions the command ran (cachegrind's I refs), and its standard output."""
    r = subprocess.run(["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null", *cmd],
                       capture_output=True, text=True, timeout=1800)
    m = re.search(r"I\s+refs:\s+([\d,]+)", r.stderr)
    if m is None:
        raise SystemExit(f"cachegrind of {cmd[0]} failed: {r.stderr.strip()[-300:]}")
    return int(m.group(1).replace(",", "")), r.stdout


def engine_per_delivery(psim: Path, xml: Path, tmp: Path) -> float:
    """Instructions per delivery of the engine `psim` builds for `xml`, run alone on its instance file."""
    code = "import sys; from pstack_tasks.native.prepare import prepare; print(prepare(sys.argv[1]).engine)"
    # run from tmp: `python -c` puts the working directory first on sys.path, and this checkout's
    # package must not stand in for the base psim's
    r = subprocess.run([str(psim.parent / "python"), "-c", code, str(xml)], capture_output=True, text=True,
                       check=True, cwd=tmp)
    engine = r.stdout.strip().splitlines()[-1]
    keep = Path(tempfile.mkdtemp(dir=tmp))
    subprocess.run([str(psim), "-q", "-r", "--no-states", "-t", str(keep), str(xml)], capture_output=True, check=True)
    inst = next(keep.glob("*.inst"))
    count, out = instructions([engine, str(inst), "--level", "-1", "--no-states"])
    doc = parse_psim_json(out)
    if doc is None:
        raise SystemExit(f"{engine} on {xml.name} printed no result")
    return count / int(metric(doc["metrics"], "Delivered messages"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--new", type=Path, default=DEFAULT_PSIM, help="psim under test")
    ap.add_argument("--base", type=Path, default=None, help="psim with the runtime to compare against")
    args = ap.parse_args()
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="engine-instructions-") as d:
        tmp = Path(d)
        loop = compile_loop(tmp)
        for name, n, m in RINGS:
            xml = tmp / f"{name.replace(' ', '_')}.xml"
            with open(xml, "w") as f:
                write_ring(n, m, f)
            hand = instructions([str(loop), str(n), str(m)])[0] / (n * m)
            new = engine_per_delivery(args.new, xml, tmp)
            figures.append(Figure(f"{name} instructions per delivery", new, "instructions", False, hand,
                                  "hand-written loop", "report only"))
            if args.base:
                base = engine_per_delivery(args.base, xml, tmp)
                figures.append(Figure(f"{name} instructions per delivery (new vs base)", new, "instructions", False,
                                      base, "base runtime", "fewer", new <= base))
        for name, write in CORPUS if args.base else []:
            xml = tmp / f"{name.split()[0]}.xml"
            write(xml)
            new, base = engine_per_delivery(args.new, xml, tmp), engine_per_delivery(args.base, xml, tmp)
            figures.append(Figure(f"{name} instructions per delivery (new vs base)", new, "instructions", False,
                                  base, "base runtime", "no more", new <= base * 1.01))
    print("| figure | value | baseline | baseline / value | target |")
    print("|---|---|---|---|---|")
    for f in figures:
        print(f"| {f.name} | {f.value:.1f} | {f.baseline or 0:.1f} ({f.baseline_name}) "
              f"| {f.ratio or 0:.2f} | {f.target} |")
    write_figures("engine_instructions", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
