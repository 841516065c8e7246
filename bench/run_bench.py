#!/usr/bin/env python3
"""Ring-oscillator benchmark: psim against a hand-written C loop.

    .venv/bin/python bench/run_bench.py [--quick] [--psim PATH] [--out FILE]

For every scenario the multi-token ring (bench/ring.py) is generated into a
temporary directory, run through ``psim -q -r`` (with ``--rmap`` for the
region scenarios) and through bench/ring_loop.c (compiled here with gcc -O2),
and a table of the figures is printed.  The figures also go to
bench/out/results.json.  See bench/README.md for what each column means.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from figures import Figure, write_figures  # noqa: E402
from ring import ring_rmap, write_ring  # noqa: E402

GiB = 1 << 30
DEFAULT_PSIM = ROOT / ".venv" / "bin" / "psim"


@dataclass
class Scenario:
    name: str
    n: int
    m: int
    regions: int = 1
    target: str = "ratio"          # "ratio", "big", "remote" or "" (report only)
    warm: bool = False             # run psim once before the measured run
    loop_repeats: int = 3


def scenarios(quick: bool) -> list[Scenario]:
    if quick:
        return [
            Scenario("single N=4", 4, 10_000),
            Scenario("single N=100", 100, 100),
            Scenario("single N=10k (big)", 10_000, 10, target="big", warm=True),
            Scenario("2 regions", 100, 100, regions=2, target="remote"),
            Scenario("4 regions", 100, 100, regions=4, target=""),
        ]
    return [
        Scenario("single N=4", 4, 1_000_000),
        Scenario("single N=1000", 1000, 1000),
        Scenario("single N=1M (big)", 1_000_000, 10, target="big", warm=True),
        Scenario("2 regions", 1000, 1000, regions=2, target="remote"),
        Scenario("4 regions", 1000, 1000, regions=4, target=""),
    ]


# Targets
RATIO_TARGET = 0.20
BIG_WALL_TARGET = 20.0
BIG_RSS_TARGET = 1 * GiB
REMOTE_TARGET = 300_000


@dataclass
class Run:
    """One child process: exit status, wall time, peak RSS, output."""
    argv: list[str]
    returncode: int
    wall: float
    maxrss: int                    # bytes, largest process in the child's tree
    stdout: str
    stderr: str
    timed_out: bool = False


def run_child(argv: list[str], timeout: float, cwd: Path | None = None) -> Run:
    """Run argv, timing it and taking its peak RSS from wait4's rusage.

    On Linux the rusage that wait4 returns for a child has ru_maxrss = the
    largest RSS of the child and of every descendant it waited for, so this is
    the peak of the biggest single process in the tree (what
    getrusage(RUSAGE_CHILDREN) would give, but per call)."""
    with tempfile.TemporaryFile("w+b") as out, tempfile.TemporaryFile("w+b") as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                             cwd=cwd, start_new_session=True)
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, ru = os.wait4(p.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        # anything the child left behind in its session (it should leave nothing)
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
        out.seek(0)
        err.seek(0)
        return Run(argv, p.returncode, wall, ru.ru_maxrss * 1024,
                   out.read().decode(errors="replace"), err.read().decode(errors="replace"),
                   timed_out.is_set())


def parse_psim_json(text: str) -> dict[str, Any] | None:
    text = text.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    # tolerate log lines before the document
    i = text.find("\n{")
    while i >= 0:
        try:
            return json.loads(text[i + 1:])
        except json.JSONDecodeError:
            i = text.find("\n{", i + 1)
    return None


def metric(metrics: dict[str, Any], *names: str) -> Any:
    low = {k.lower(): v for k, v in metrics.items()}
    for n in names:
        if n.lower() in low:
            return low[n.lower()]
    return None


class Psim:
    def __init__(self, path: Path, timeout: float):
        self.path = path
        self.timeout = timeout
        r = subprocess.run([str(path), "--help"], capture_output=True, text=True, timeout=60)
        self.help = r.stdout + r.stderr
        if r.returncode != 0:
            raise SystemExit(f"`{path} --help` failed (exit {r.returncode}):\n{self.help}")
        self.no_states = "--no-states" in self.help

    def argv(self, xml: Path, rmap: Path | None, states: bool) -> list[str]:
        a = [str(self.path), "-q", "-r"]
        if not states and self.no_states:
            a.append("--no-states")
        if rmap is not None:
            a += ["--rmap", str(rmap)]
        a.append(str(xml))
        return a

    def run(self, xml: Path, rmap: Path | None = None, states: bool = False) -> tuple[Run, dict[str, Any] | None]:
        r = run_child(self.argv(xml, rmap, states), self.timeout)
        return r, parse_psim_json(r.stdout)


def compile_loop(tmp: Path) -> Path:
    exe = tmp / "ring_loop"
    subprocess.run(["gcc", "-O2", "-o", str(exe), str(HERE / "ring_loop.c")], check=True)
    return exe


def run_loop(exe: Path, n: int, m: int, repeats: int) -> dict[str, Any]:
    best = None
    delivered = None
    for _ in range(repeats):
        r = subprocess.run([str(exe), str(n), str(m)], capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise RuntimeError(f"ring_loop {n} {m} failed: {r.stdout}{r.stderr}")
        vals = dict(line.split() for line in r.stdout.splitlines() if line.strip())
        delivered = int(vals["delivered"])
        s = float(vals["seconds"])
        best = s if best is None else min(best, s)
    assert delivered == n * m, (delivered, n, m)
    return {"delivered": delivered, "seconds": best, "rate": delivered / best if best else float("inf")}


def check_states(psim: Psim, tmp: Path) -> list[str]:
    """Small rings, with states: delivered == N*M and every node ends counter=M, pending=0."""
    problems = []
    for n, m, regions in [(5, 7, 1), (1, 3, 1), (6, 4, 2), (8, 5, 4)]:
        xml = tmp / f"check-{n}-{m}-{regions}.xml"
        with open(xml, "w") as f:
            write_ring(n, m, f)
        rmap = None
        if regions > 1:
            rmap = tmp / f"check-{n}-{regions}.rmap.json"
            rmap.write_text(json.dumps(ring_rmap(n, regions)))
        r, doc = psim.run(xml, rmap, states=True)
        what = f"N={n} M={m} regions={regions}"
        if r.returncode != 0 or doc is None:
            problems.append(f"{what}: psim exit {r.returncode}, no JSON; stderr: {r.stderr.strip()[-500:]}"
                            f"\n  reproduce: {' '.join(r.argv)}")
            continue
        metrics = doc.get("metrics", {})
        d = metric(metrics, "Delivered messages")
        if d != n * m:
            problems.append(f"{what}: Delivered messages {d}, expected {n * m}")
        states = doc.get("states", {})
        for i in range(n):
            s = states.get(f"n{i}")
            if isinstance(s, dict) and "node" in s and isinstance(s["node"], dict):
                s = s["node"]
            if not isinstance(s, dict) or s.get("counter") != m or s.get("pending") != 0:
                problems.append(f"{what}: state of n{i} is {s!r}, expected counter={m}, pending=0")
                break
    return problems


def fmt_rate(x: float | None) -> str:
    if x is None:
        return "-"
    if x >= 1e6:
        return f"{x / 1e6:.2f}M"
    if x >= 1e3:
        return f"{x / 1e3:.1f}k"
    return f"{x:.0f}"


def fmt_s(x: float | None) -> str:
    return "-" if x is None else (f"{x:.3f}" if x >= 0.1 else f"{x:.2e}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    ap.add_argument("--psim", type=Path, default=DEFAULT_PSIM, help="psim executable (default: %(default)s)")
    ap.add_argument("--out", type=Path, default=None,
                    help="results JSON (default: bench/out/results.json, or results-quick.json with --quick)")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per psim call")
    ap.add_argument("--only", default=None, help="run only scenarios whose name contains this text")
    ap.add_argument("--no-check", action="store_true", help="skip the small-ring state check")
    args = ap.parse_args(argv)

    out_path = args.out or (HERE / "out" / ("results-quick.json" if args.quick else "results.json"))
    psim = Psim(args.psim, args.timeout)
    print(f"psim: {psim.path} (--no-states {'used' if psim.no_states else 'not available'})", flush=True)

    results: dict[str, Any] = {
        "quick": args.quick,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(),
                 "cpu": _cpu_model()},
        "psim": str(psim.path),
        "psim_no_states": psim.no_states,
        "targets": {"single_region_ratio": RATIO_TARGET, "big_wall_s": BIG_WALL_TARGET,
                    "big_rss_bytes": BIG_RSS_TARGET, "two_region_remote_rate": REMOTE_TARGET},
        "scenarios": [],
    }
    rows = []
    all_pass = True
    all_correct = True     # psim ran, delivered N*M, ended by quiescence, states right
    with tempfile.TemporaryDirectory(prefix="ring-bench-") as td:
        tmp = Path(td)
        loop_exe = compile_loop(tmp)

        # warm the compile cache (the ring graph type is the same in every scenario)
        xml = tmp / "warm.xml"
        with open(xml, "w") as f:
            write_ring(4, 10, f)
        r, doc = psim.run(xml)
        results["cold_start"] = {"wall_s": r.wall, "returncode": r.returncode, "maxrss_bytes": r.maxrss}
        print(f"cold start (compile) N=4 M=10: {r.wall:.2f} s wall, exit {r.returncode}", flush=True)
        if r.returncode != 0:
            print(r.stderr[-2000:], file=sys.stderr)

        if not args.no_check:
            problems = check_states(psim, tmp)
            results["state_check"] = problems or "ok"
            print("state check (small rings, 1/2/4 regions): " + ("ok" if not problems else "FAILED"), flush=True)
            for p in problems:
                print("  " + p, flush=True)
            all_pass &= not problems
            all_correct &= not problems

        for sc in scenarios(args.quick):
            if args.only and args.only not in sc.name:
                continue
            print(f"--- {sc.name}: N={sc.n} M={sc.m} regions={sc.regions}", flush=True)
            xml = tmp / f"ring-{sc.n}-{sc.m}.xml"
            t0 = time.perf_counter()
            with open(xml, "w", buffering=1 << 20) as f:
                write_ring(sc.n, sc.m, f)
            gen_s = time.perf_counter() - t0
            rmap = None
            if sc.regions > 1:
                rmap = tmp / f"ring-{sc.n}-r{sc.regions}.rmap.json"
                rmap.write_text(json.dumps(ring_rmap(sc.n, sc.regions)))

            warm = None
            if sc.warm:
                wr, _ = psim.run(xml, rmap)
                warm = {"wall_s": wr.wall, "returncode": wr.returncode, "maxrss_bytes": wr.maxrss}
                print(f"    warm-up run: {wr.wall:.2f} s wall, exit {wr.returncode}", flush=True)
            r, doc = psim.run(xml, rmap)
            metrics = (doc or {}).get("metrics", {}) if isinstance(doc, dict) else {}
            delivered = metric(metrics, "Delivered messages")
            run_s = metric(metrics, "Run seconds")
            remote = metric(metrics, "Remote messages", "Remote messages sent", "Cross-region messages")
            exit_code = metric(metrics, "Exit code")
            expected = sc.n * sc.m
            ok_run = r.returncode == 0 and doc is not None and not r.timed_out
            exit_reason = metric(metrics, "Exit reason")
            ok_count = delivered == expected
            ok_end = exit_code in (0, None) and exit_reason in ("quiescence", None)
            secs = run_s if isinstance(run_s, (int, float)) and run_s > 0 else r.wall
            rate = delivered / secs if ok_run and isinstance(delivered, int) and secs else None
            if sc.regions > 1 and ok_run and remote is None and isinstance(delivered, int):
                remote = delivered      # every hop crosses a region
            remote_rate = remote / secs if sc.regions > 1 and isinstance(remote, int) and secs else None

            loop = run_loop(loop_exe, sc.n, sc.m, sc.loop_repeats)
            ratio = rate / loop["rate"] if rate else None

            if sc.target == "ratio":
                target = f"ratio >= {RATIO_TARGET:.2f}"
                passed = ok_run and ok_count and ratio is not None and ratio >= RATIO_TARGET
            elif sc.target == "big":
                target = f"wall < {BIG_WALL_TARGET:.0f}s, RSS < 1GiB"
                passed = ok_run and ok_count and r.wall < BIG_WALL_TARGET and r.maxrss < BIG_RSS_TARGET
            elif sc.target == "remote":
                target = f"remote >= {REMOTE_TARGET // 1000}k/s"
                passed = ok_run and ok_count and remote_rate is not None and remote_rate >= REMOTE_TARGET
            else:
                target = "(report only)"
                passed = ok_run and ok_count
            passed = passed and ok_end
            all_pass &= passed
            all_correct &= ok_run and ok_count and ok_end
            verdict = "PASS" if passed else "FAIL"
            if not ok_run:
                verdict += " (psim failed" + (", timed out" if r.timed_out else f", exit {r.returncode}") + ")"
            elif not ok_count:
                verdict += f" (delivered {delivered} != {expected})"
            elif not ok_end:
                verdict += f" (ended by {exit_reason!r}, exit code {exit_code})"

            rec = {
                "scenario": sc.name, "n": sc.n, "m": sc.m, "regions": sc.regions,
                "expected_delivered": expected, "delivered": delivered, "exit_code": exit_code,
                "exit_reason": exit_reason,
                "generate_s": gen_s, "xml_bytes": xml.stat().st_size,
                "wall_s": r.wall, "run_s": run_s, "rate_basis": "run_s" if secs is run_s else "wall_s",
                "msgs_per_s": rate, "remote_messages": remote if sc.regions > 1 else None,
                "remote_msgs_per_s": remote_rate,
                "loop_s": loop["seconds"], "loop_msgs_per_s": loop["rate"], "ratio": ratio,
                "maxrss_bytes": r.maxrss, "psim_returncode": r.returncode, "timed_out": r.timed_out,
                "warm_up": warm, "target": target, "pass": passed, "verdict": verdict,
                "metrics": metrics, "argv": r.argv,
            }
            if not ok_run:
                rec["stderr_tail"] = r.stderr[-3000:]
                print(f"    psim failed: exit {r.returncode}\n    {' '.join(r.argv)}\n" + r.stderr[-1500:], flush=True)
            results["scenarios"].append(rec)
            rows.append(rec)
            print(f"    wall {r.wall:.3f}s run {fmt_s(run_s if isinstance(run_s, (int, float)) else None)}s "
                  f"delivered {delivered} rate {fmt_rate(rate)}/s loop {fmt_rate(loop['rate'])}/s "
                  f"RSS {r.maxrss / 2**20:.0f}MiB -> {verdict}", flush=True)
            xml.unlink()

    results["all_pass"] = all_pass
    results["all_correct"] = all_correct
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    write_figures("run_bench", figures(rows), quick=args.quick)
    print()
    print(table(rows))
    print(f"\nresults: {out_path}")
    if args.quick:   # smoke test: the targets are not meaningful at these sizes
        return 0 if all_correct else 1
    return 0 if all_pass else 1


def figures(rows: list[dict[str, Any]]) -> list[Figure]:
    """The scenarios as bench/figures.py figures: msg/s beside the hand-written loop's (the
    in-run baseline), and for the big ring its wall time and peak RSS (no in-run baseline)."""
    out = []
    for r in rows:
        value = r["remote_msgs_per_s"] if r["regions"] > 1 else r["msgs_per_s"]
        out.append(Figure(f"ring {r['scenario']} msg/s", float(value or 0.0), "msg/s", True,
                          r["loop_msgs_per_s"], "hand-written loop", r["target"], bool(r["pass"])))
        if r["scenario"].endswith("(big)"):
            out.append(Figure(f"ring {r['scenario']} wall", float(r["wall_s"]), "s", False,
                              target=f"< {BIG_WALL_TARGET:.0f} s", passed=r["wall_s"] < BIG_WALL_TARGET))
            out.append(Figure(f"ring {r['scenario']} peak RSS", r["maxrss_bytes"] / 2**20, "MiB", False,
                              target="< 1024 MiB", passed=r["maxrss_bytes"] < BIG_RSS_TARGET))
    return out


def table(rows: list[dict[str, Any]]) -> str:
    head = ["scenario", "N", "M", "delivered", "wall s", "run s", "msg/s", "loop msg/s", "ratio",
            "remote msg/s", "peak RSS", "target", "result"]
    body = []
    for r in rows:
        d = r["delivered"]
        body.append([
            r["scenario"], f"{r['n']:,}", f"{r['m']:,}",
            "-" if d is None else f"{d:,}",
            fmt_s(r["wall_s"]),
            fmt_s(r["run_s"]) if isinstance(r["run_s"], (int, float)) else "-",
            fmt_rate(r["msgs_per_s"]), fmt_rate(r["loop_msgs_per_s"]),
            "-" if r["ratio"] is None else f"{r['ratio']:.3f}",
            fmt_rate(r["remote_msgs_per_s"]),
            f"{r['maxrss_bytes'] / 2**20:.0f} MiB",
            r["target"], r["verdict"],
        ])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(head), sep] + [line(b) for b in body])


def _cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())
