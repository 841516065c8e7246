#!/usr/bin/env python3
"""The single-region engine against the hand-written loop, and against a base runtime (issue 17, item 5).

    .venv/bin/python bench/engine_loop_bench.py [--quick] [--base PSIM] [--new PSIM] [--rounds 5]

Rings (bench/ring.py): every round runs the hand-written loop (bench/ring_loop.c, gcc -O2) and
psim on the same ring, taking turns; the figures are medians over rounds of
* "<ring> whole-process msg/s": N*M / the wall time of the whole `psim -q -r --no-states` call
  (parse, build cache look-up, instance, run, output), and
* "<ring> engine-run msg/s": N*M / the engine's own `Run seconds`,
each beside the hand loop's msg/s of the same rounds (target: ratio >= 0.5), and
* "<ring> whole-process msg per CPU s": N*M / the CPU seconds (user + system) of the whole psim
  call and its engine, beside N*M / the CPU seconds of the whole hand-loop process.

With --base, every scenario (the rings and the corpus apps: clock_tree, ising_spin_fix, apsp from
bench/corpus_gen.py and gals_heat_fix from /work/shared/data) also runs the base psim in the same
rounds (base first in odd rounds, new first in even ones), and "<app> engine-run msg/s (new vs
base)" has the base as its baseline (target: no slower, ratio >= 0.95 given this machine's noise).
"""
from __future__ import annotations

import argparse
import gzip
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import corpus_gen  # noqa: E402
from figures import Figure, write_figures  # noqa: E402
from ring import write_ring  # noqa: E402
from run_bench import compile_loop, metric, parse_psim_json, run_loop  # noqa: E402

DEFAULT_PSIM = HERE.parent / ".venv" / "bin" / "psim"
GALS = Path("/work/shared/data/bench/gals_heat_fix_300_1500.xml.gz")

#: name, N, M
RINGS = [("ring 4x25M", 4, 25_000_000), ("ring 1000x1000", 1000, 1000), ("ring 1000x10k", 1000, 10_000)]
QUICK_RINGS = [("ring 4x1M", 4, 1_000_000), ("ring 1000x100", 1000, 100)]
#: name, writer of the XML
CORPUS: list[tuple[str, Callable[[Path], None]]] = [
    ("clock_tree 5x4 2000 ticks", lambda p: _write(p, corpus_gen.clock_tree, 5, 4, 2000)),
    ("ising_spin_fix 32x32", lambda p: _write(p, corpus_gen.ising_spin_fix, 32, 32, 200_000_000)),
    ("apsp 512 nodes", lambda p: _write(p, corpus_gen.apsp, 512, 4)),
    ("gals_heat_fix 300x1500", lambda p: _gunzip(GALS, p)),
]


def _write(path: Path, gen: Callable[..., None], *sizes: int) -> None:
    with open(path, "w") as f:
        gen(f, *sizes)


def _gunzip(src: Path, dst: Path) -> None:
    with gzip.open(src, "rb") as f, open(dst, "wb") as out:
        shutil.copyfileobj(f, out)


def timed(cmd: list[str]) -> tuple[float, float, int, str, str]:
    """Run ``cmd`` to its end: (wall seconds, CPU seconds of it and the children it waited for (user +
    system, from wait4), exit status, stdout, stderr)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return (wall, usage.ru_utime + usage.ru_stime, proc.returncode, out.read().decode(),
                err.read().decode(errors="replace"))


def run_psim(psim: Path, xml: Path) -> tuple[float, float, float, int]:
    """(wall seconds of the whole call, its CPU seconds, the engine's Run seconds, Delivered messages)."""
    wall, cpu, code, out, err = timed([str(psim), "-q", "-r", "--no-states", str(xml)])
    doc = parse_psim_json(out)
    if doc is None or code not in (0, 1):
        raise SystemExit(f"{psim} {xml.name}: exit {code}: {err.strip()[-300:]}")
    m = doc["metrics"]
    return wall, cpu, float(metric(m, "Run seconds")), int(metric(m, "Delivered messages"))


def loop_cpu(exe: Path, n: int, m: int) -> float:
    """CPU seconds of the whole hand-written loop process on ring N x M."""
    _, cpu, code, out, err = timed([str(exe), str(n), str(m)])
    if code != 0:
        raise SystemExit(f"ring_loop {n} {m}: exit {code}: {out}{err}")
    return cpu


def ring_figures(name: str, nm: int, walls: list[float], rates: list[float], loops: list[float],
                 cpus: list[float], loop_cpus: list[float]) -> list[Figure]:
    """Whole-process and engine-run msg/s of a ring (medians over rounds) beside the hand loop's, and
    the whole process's msg per CPU second beside the hand loop process's (the figure the load of a
    shared machine moves least)."""
    loop = statistics.median(loops)
    target = "ratio >= 0.5 of the hand loop"
    whole = nm / statistics.median(walls)
    run = statistics.median(rates)
    cpu, loop_cpu_rate = nm / statistics.median(cpus), nm / statistics.median(loop_cpus)
    hand = "hand-written loop"
    return [Figure(f"{name} whole-process msg/s", whole, "msg/s", True, loop, hand, target, whole >= loop / 2),
            Figure(f"{name} engine-run msg/s", run, "msg/s", True, loop, hand, target, run >= loop / 2),
            Figure(f"{name} whole-process msg per CPU s", cpu, "msg/s", True, loop_cpu_rate,
                   "hand-written loop process", target, cpu >= loop_cpu_rate / 2)]


def ab_figure(name: str, new: list[float], base: list[float]) -> Figure:
    n, b = statistics.median(new), statistics.median(base)
    return Figure(f"{name} engine-run msg/s (new vs base)", n, "msg/s", True, b, "base runtime",
                  "no slower (ratio >= 0.95)", n >= 0.95 * b)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--new", type=Path, default=DEFAULT_PSIM, help="psim under test")
    ap.add_argument("--base", type=Path, default=None, help="psim with the runtime to compare against")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="small rings, 2 rounds, no corpus apps")
    ap.add_argument("--no-corpus", action="store_true")
    args = ap.parse_args()
    rounds = 2 if args.quick else args.rounds
    psims = {"new": args.new} | ({"base": args.base} if args.base else {})
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="engine-loop-bench-") as d:
        tmp = Path(d)
        loop_exe = compile_loop(tmp)
        apps: list[tuple[str, Path, int]] = []  # name, xml, N*M (0: not a ring)
        sizes: dict[str, tuple[int, int]] = {}
        for name, n, m in QUICK_RINGS if args.quick else RINGS:
            xml = tmp / f"{name.replace(' ', '_')}.xml"
            with open(xml, "w") as f:
                write_ring(n, m, f)
            apps.append((name, xml, n * m))
            sizes[name] = (n, m)
        if not args.quick and not args.no_corpus:
            for name, write in CORPUS:
                if name.startswith("gals") and not GALS.exists():
                    continue
                xml = tmp / f"{name.split()[0]}.xml"
                write(xml)
                apps.append((name, xml, 0))
        for _, xml, _ in apps:  # warm the build caches: compiling is not measured
            for p in psims.values():
                run_psim(p, xml)
        walls: dict[tuple[str, str], list[float]] = {(a, k): [] for a, _, _ in apps for k in psims}
        cpus: dict[tuple[str, str], list[float]] = {(a, k): [] for a, _, _ in apps for k in psims}
        loop_cpus: dict[str, list[float]] = {a: [] for a, _, nm in apps if nm}
        # msg/s of the engine's Run seconds
        runs: dict[tuple[str, str], list[float]] = {(a, k): [] for a, _, _ in apps for k in psims}
        loops: dict[str, list[float]] = {a: [] for a, _, nm in apps if nm}
        for i in range(rounds):
            order = list(psims) if i % 2 == 0 else list(psims)[::-1]
            for name, xml, nm in apps:
                if nm:
                    loops[name].append(run_loop(loop_exe, *sizes[name], 1)["rate"])
                    loop_cpus[name].append(loop_cpu(loop_exe, *sizes[name]))
                for k in order:
                    wall, cpu, run, delivered = run_psim(psims[k], xml)
                    if nm and delivered != nm:
                        raise SystemExit(f"{k} psim on {name}: delivered {delivered}, expected {nm}")
                    walls[(name, k)].append(wall)
                    cpus[(name, k)].append(cpu)
                    runs[(name, k)].append(delivered / run if run else float("inf"))
            print(f"round {i + 1}/{rounds} done", file=sys.stderr, flush=True)
        for name, _, nm in apps:
            if nm:
                figures += ring_figures(name, nm, walls[(name, "new")], runs[(name, "new")], loops[name],
                                        cpus[(name, "new")], loop_cpus[name])
            if "base" in psims:
                figures.append(ab_figure(name, runs[(name, "new")], runs[(name, "base")]))
    print("| figure | value | baseline | ratio | target | passed |")
    print("|---|---|---|---|---|---|")
    for f in figures:
        print(f"| {f.name} | {f.value / 1e6:.1f} M | {(f.baseline or 0) / 1e6:.1f} M ({f.baseline_name}) "
              f"| {f.ratio:.3f} | {f.target} | {f.passed} |")
    write_figures("engine_loop_bench" + ("_quick" if args.quick else ""), figures, rounds=rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
