"""The native instance loader: whole-process time and peak memory of ``psim -q -r`` on the ring,
the second run (parsed instance cached), and gals_heat's load time against the Python loader,
read as it ships (``.xml.gz``) against the plain file.

``python bench/loader_bench.py`` (1M ring), ``--big`` (adds the 10M ring), ``--quick`` (a 100k ring,
seconds).  Figures go to bench/out/loader_bench.json through bench/figures.py.
"""
from __future__ import annotations

import argparse
import gzip
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from figures import Figure, write_figures  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PSIM = [sys.executable, "-m", "pstack_tasks.ui.cli.psim", "-q", "-r"]
GALS = Path("/work/shared/data/bench/gals_heat_fix_300_1500.xml.gz")


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Seconds and peak MiB (the largest process of the run) of one command; its CPU seconds
    (user + system, all its processes) are logged: on a loaded machine they say more."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.monotonic()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    seconds = time.monotonic() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    print(f"  {' '.join(cmd[-1:])}: {seconds:.2f} s wall, {cpu:.2f} s CPU, load {os.getloadavg()[0]:.1f}",
          file=sys.stderr)
    return seconds, max(after.ru_maxrss, before.ru_maxrss) / 1024


def ring_figures(n: int, work: Path, env: dict[str, str], secs: float, mib: float) -> list[Figure]:
    path = work / f"ring{n}.xml"
    with open(path, "w") as f:
        subprocess.run([sys.executable, str(ROOT / "bench" / "ring.py"), str(n), "10"], stdout=f, check=True)
    run(PSIM + [str(path)], env)  # builds the engine and the loader: not timed
    shutil.rmtree(Path(env["PSTACK_CACHE_DIR"]) / "instances", ignore_errors=True)
    cold_s, cold_mib = run(PSIM + [str(path)], env)
    warm_s, _ = run(PSIM + [str(path)], env)
    python_s = run(PSIM + [str(path)], dict(env, PSTACK_NATIVE_LOADER="0"))[0] if n <= 1_000_000 else None
    label = f"{n // 1000}k" if n < 1_000_000 else f"{n // 1_000_000}M"
    return [Figure(f"ring {label} psim -q -r, whole process", cold_s, "s", False, baseline=python_s,
                   baseline_name="Python loader" if python_s else "", target=f"< {secs:g} s",
                   passed=cold_s < secs),
            Figure(f"ring {label} peak memory", cold_mib, "MiB", False, target=f"< {mib:g} MiB", passed=cold_mib < mib),
            Figure(f"ring {label} second run (instance cached), whole process", warm_s, "s", False)]


def load_measure(path: Path, env: dict[str, str], native: bool) -> tuple[float, float]:
    """Seconds and peak MiB of one load of ``path`` in a fresh process."""
    code = ("import resource,sys,time;from pstack_tasks.native import instance_loader as l;t=time.monotonic();"
            "l.load(sys.argv[1]);print(time.monotonic()-t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    e = dict(env, PSTACK_NATIVE_LOADER="1" if native else "0")
    out = subprocess.run([sys.executable, "-c", code, str(path)], env=e, check=True, capture_output=True, text=True)
    seconds, kib = out.stdout.split()
    return float(seconds), int(kib) / 1024


def load_seconds(path: Path, env: dict[str, str], native: bool) -> float:
    return load_measure(path, env, native)[0]


def gals_figure(work: Path, env: dict[str, str]) -> list[Figure]:
    """gals_heat 300x300 read as it ships (.xml.gz) and decompressed (the baseline): the native
    loader cold and cached, the Python loader's time and peak memory (it reads the .gz as a
    stream: its peak must stay within 10% of the plain file's)."""
    if not GALS.is_file():
        return []
    plain = work / "gals.xml"
    with gzip.open(GALS, "rb") as src, plain.open("wb") as dst:  # the plain file, for the baselines only
        shutil.copyfileobj(src, dst)
    load_seconds(GALS, env, True)  # builds the loader
    figs = []
    for name, path in (("", plain), (" .xml.gz", GALS)):
        shutil.rmtree(Path(env["PSTACK_CACHE_DIR"]) / "instances", ignore_errors=True)
        cold = load_seconds(path, env, True)
        cached = load_seconds(path, env, True)
        python, python_mib = load_measure(path, env, False)
        figs.append((name, cold, cached, python, python_mib))
    (_, p_cold, p_cached, p_python, p_mib), (gz, g_cold, g_cached, g_python, g_mib) = figs
    return [Figure("gals_heat 300x300 load (native, not cached)", p_cold, "s", False, baseline=p_python,
                   baseline_name="Python loader"),
            Figure(f"gals_heat 300x300{gz} load (native, not cached)", g_cold, "s", False, baseline=p_cold,
                   baseline_name="the plain file"),
            Figure(f"gals_heat 300x300{gz} load (native, cached)", g_cached, "s", False, baseline=p_cached,
                   baseline_name="the plain file, cached", target="<= 1.1 x the plain file",
                   passed=g_cached <= 1.1 * p_cached + 0.01),
            Figure(f"gals_heat 300x300{gz} load (Python loader)", g_python, "s", False, baseline=p_python,
                   baseline_name="the plain file"),
            Figure(f"gals_heat 300x300{gz} Python loader peak memory", g_mib, "MiB", False, baseline=p_mib,
                   baseline_name="the plain file", target="<= 1.1 x the plain file", passed=g_mib <= 1.1 * p_mib)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="a 100k ring only (seconds)")
    ap.add_argument("--big", action="store_true", help="also the 10M ring (< 60 s, < 4 GiB)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="loader-bench-") as d:
        work = Path(d)
        env = dict(os.environ, PSTACK_CACHE_DIR=os.environ.get("PSTACK_CACHE_DIR", str(work / "cache")))
        if args.quick:
            figs = ring_figures(100_000, work, env, 5, 512)
        else:
            figs = ring_figures(1_000_000, work, env, 5, 512) + gals_figure(work, env)
            if args.big:
                figs += ring_figures(10_000_000, work, env, 60, 4096)
    for f in figs:
        print(f"{f.name}: {f.value:.2f} {f.unit}" + (f" (target {f.target}: {'met' if f.passed else 'NOT met'})"
                                                    if f.target else "")
              + (f" [{f.baseline_name}: {f.baseline:.2f}]" if f.baseline is not None else ""))
    print("written", write_figures("loader_bench", figs))


if __name__ == "__main__":
    main()
