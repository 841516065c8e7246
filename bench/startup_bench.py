"""Start-up: whole-process seconds of ``psim`` on a small app and of ``pstack run`` on the embedded
stack, each beside a baseline measured in the same run (interleaved rounds, medians).

* psim: ``psim -q -r`` on pstack's ring oscillator and basic-01 with a warm engine cache (so a
  warm start: docs/psim.md), and on the ring with ``-t`` (which parses the file every time), beside
  a bare interpreter start (``python -c pass``) and the cached engine binary alone.  Target (issue
  17, item 4): < 0.15 s whole process.
* pstack run: ``pstack run -r --rmap '{"n1": 1}'`` (2 regions) with no PSTACK_REDIS_URL (a private
  redis-server and local Celery workers, started and stopped by the command), beside a
  redis-server start and stop alone.  Target: < 1.5 s whole process.

Each figure is the median wall time over the rounds; the CPU seconds (user + system of the
command and every child it waited for) are printed beside it, since on a shared machine the
wall time mostly says how busy the machine was.  Child Pythons run with bytecode caching on
(PYTHONDONTWRITEBYTECODE unset), as an installed package does.

    .venv/bin/python bench/startup_bench.py [--rounds 15] [--stack-rounds 5] [--quick] [--before DIR]
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from figures import Figure, write_figures  # noqa: E402

BIN = Path(sys.executable).parent
PSTACK_DATA = ROOT / "tests" / "data" / "pstack"
RING = PSTACK_DATA / "ring-oscillator-01.xml"
BASIC = PSTACK_DATA / "basic-01.xml"
RMAP = '{"n1": 1}'  # regions 0 and 1


def child_env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PSTACK_REDIS_URL")}
    env["PSTACK_CACHE_DIR"] = str(cache)
    return env


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of it and its waited-for children) of one command; it must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.decode(errors='replace').strip()}")
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def rounds(commands: dict[str, Callable[[], tuple[float, float]]], n: int) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) of each command, run in turns: one of each per round."""
    got: dict[str, list[tuple[float, float]]] = {k: [] for k in commands}
    for _ in range(n):
        for name, run in commands.items():
            got[name].append(run())
    return {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in got.items()}


def engine_of(app: Path, env: dict[str, str]) -> Path:
    """The cached engine of ``app`` (built now if the cache lacks it)."""
    code = "import sys; from pstack_tasks.native.prepare import prepare; print(prepare(sys.argv[1]).engine)"
    out = subprocess.run([sys.executable, "-c", code, str(app)], env=env, capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def psim_figures(n: int, cache: Path, before: Path | None) -> list[Figure]:
    env = child_env(cache)
    psim = [str(BIN / "psim"), "-q", "-r"]
    for app in (RING, BASIC):  # warm: the engine cache and the bytecode caches
        timed(psim + [str(app)], env)
    commands: dict[str, Callable[[], tuple[float, float]]] = {
        "python -c pass": lambda: timed([sys.executable, "-c", "pass"], env),
        "psim ring-oscillator-01": lambda: timed(psim + [str(RING)], env),
        "psim basic-01": lambda: timed(psim + [str(BASIC)], env),
        # -t keeps the instance files: the run parses (no warm start, docs/psim.md "Warm start")
        "psim ring-oscillator-01 parsed (-t)": lambda: timed(psim + ["-t", str(cache / "kept"), str(RING)], env),
    }
    if before is not None:
        old = [str(before / "psim"), "-q", "-r", str(RING)]
        timed(old, env)
        commands["before: psim ring-oscillator-01"] = lambda: timed(old, env)
    got = rounds(commands, n)
    if before is not None:
        print(f"before ({before}): psim ring-oscillator-01 {got['before: psim ring-oscillator-01'][0]:.3f} s wall, "
              f"{got['before: psim ring-oscillator-01'][1]:.3f} s CPU")
    bare = got["python -c pass"][0]
    figures = []
    for name in ("psim ring-oscillator-01", "psim basic-01", "psim ring-oscillator-01 parsed (-t)"):
        wall, cpu = got[name]
        print(f"{name}: {wall:.3f} s wall (median of {n}), {cpu:.3f} s CPU; bare interpreter {bare:.3f} s, "
              f"CPU {got['python -c pass'][1]:.3f} s")
        figures.append(Figure(f"{name} whole process", wall, "s", higher_is_better=False, baseline=bare,
                              baseline_name="python -c pass", target="< 0.15 s", passed=wall < 0.15))
    print(f"warm start / parsed run on ring-oscillator-01: "
          f"{got['psim ring-oscillator-01'][0] / got['psim ring-oscillator-01 parsed (-t)'][0]:.2f} of the wall time, "
          f"{got['psim ring-oscillator-01'][1] / got['psim ring-oscillator-01 parsed (-t)'][1]:.2f} of the CPU")
    print(f"(the engine alone: {engine_of(RING, env)} runs in under a millisecond of that)")
    return figures


def redis_alone() -> tuple[float, float]:
    code = "from pstack_tasks.native.redis_server import EmbeddedRedis\nwith EmbeddedRedis(): pass"
    return timed([sys.executable, "-c", code], child_env(Path(tempfile.gettempdir())))


def stack_figures(n: int, cache: Path, before: Path | None) -> list[Figure]:
    env = child_env(cache)
    cmd = [str(BIN / "pstack"), "run", "--no-progress", "-r", "--rmap", RMAP, str(RING)]
    timed(cmd, env)  # warm
    commands = {"redis-server start+stop": redis_alone, "pstack run embedded": lambda: timed(cmd, env)}
    if before is not None:
        old = [str(before / "pstack"), *cmd[1:]]
        commands["before: pstack run embedded"] = lambda: timed(old, env)
    got = rounds(commands, n)
    if before is not None:
        print(f"before ({before}): pstack run embedded {got['before: pstack run embedded'][0]:.3f} s wall, "
              f"{got['before: pstack run embedded'][1]:.3f} s CPU")
    wall, cpu = got["pstack run embedded"]
    base = got["redis-server start+stop"][0]
    print(f"pstack run embedded (2-region ring): {wall:.3f} s wall (median of {n}), {cpu:.3f} s CPU; "
          f"redis-server start+stop alone {base:.3f} s")
    return [Figure("pstack run embedded 2-region ring whole process", wall, "s", higher_is_better=False,
                   baseline=base, baseline_name="redis-server start+stop (from python)", target="< 1.5 s",
                   passed=wall < 1.5)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15, help="psim rounds (each: bare python, ring, basic)")
    ap.add_argument("--stack-rounds", type=int, default=5, help="pstack run rounds (each: redis alone, run)")
    ap.add_argument("--quick", action="store_true", help="a few seconds: 3 psim rounds, 1 pstack run round")
    ap.add_argument("--before", type=Path, default=None,
                    help="another installation's bin directory (e.g. main's .venv/bin), timed in the same rounds")
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds, args.stack_rounds = 3, 1
    print(f"load average: {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="startup-bench-") as tmp:
        cache = Path(tmp) / "cache"
        figures = psim_figures(args.rounds, cache, args.before) + stack_figures(args.stack_rounds, cache, args.before)
    path = write_figures("startup_bench", figures)
    print(f"figures: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
