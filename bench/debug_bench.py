#!/usr/bin/env python3
"""The step debugger's speed: events per second of ``cont()`` (the debug engine's own loop, with
a breakpoint compared after every event) and of ``until()`` with a Python predicate that reads a
device's state after every event, each beside the same run's psim on the same graph.

A debug event is one send or one delivery, so psim's rate is counted the same way
(sent + delivered per second of its run).  Report only: the issue sets no target; the figures
say when to reach for ``break_when`` instead of ``until`` (docs/debugging.md, "The step debugger").

    .venv/bin/python bench/debug_bench.py [--quick]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from figures import Figure, write_figures  # noqa: E402
from ring import generate_ring  # noqa: E402

from pstack_tasks import debug, psim  # noqa: E402


def psim_rate(app: str) -> float:
    """psim's events (sends + deliveries) per second of its run, best of three."""
    best = 0.0
    for _ in range(3):
        m = psim(app, options={"quiet": True})["metrics"]
        best = max(best, (m["Sent messages"] + m["Delivered messages"]) / max(m["Run seconds"], 1e-9))
    return best


def cont_rate(app: str) -> tuple[float, int]:
    """The debugger's cont() over the whole run, with a breakpoint that never fires: events/s."""
    with debug(app, level=0) as s:
        s.break_when("n0", "counter", ">", 1 << 31)
        t0 = time.perf_counter()
        s.cont()
        seconds = time.perf_counter() - t0
        return s.events_run / seconds, s.events_run


def until_rate(app: str, steps: int) -> float:
    """until() with a predicate that reads a state after each event: events/s over ``steps`` events."""
    with debug(app, level=0) as s:
        t0 = time.perf_counter()
        s.until(lambda s: s.state("n0")["counter"] < 0 or s.events_run >= steps, max_steps=steps + 1)
        return s.events_run / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a smaller ring (seconds)")
    args = ap.parse_args()
    n, m, steps = (64, 1000, 2000) if args.quick else (256, 4000, 20000)
    with tempfile.TemporaryDirectory() as tmp:
        app = str(Path(tmp) / "ring.xml")
        Path(app).write_text(generate_ring(n, m))
        psim(app, options={"quiet": True})  # builds both engines before anything is timed
        with debug(app, level=0):
            pass
        base = psim_rate(app)
        cont, events = cont_rate(app)
        until = until_rate(app, steps)
    figures = [
        Figure("debug cont events/s", cont, "events/s", baseline=base, baseline_name="psim, same graph"),
        Figure("debug until events/s (state() predicate)", until, "events/s", baseline=cont,
               baseline_name="debug cont"),
    ]
    path = write_figures("debug_bench", figures, ring={"devices": n, "tokens_each": m, "events": events})
    for f in figures:
        print(f"{f.name}: {f.value:,.0f} {f.unit} (baseline {f.baseline_name}: {f.baseline:,.0f}; "
              f"ratio {f.ratio:.3g})")
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
