#!/usr/bin/env python3
"""Checkpoints: what one costs (the pause every region takes, the bytes kept) on a big instance,
and what taking them every few seconds costs a run (docs/persistence.md; issue 16).

* Pause and size: a multi-token ring of 1,000,000 devices (bench/ring.py; 100,000 with ``--quick``)
  split in two halves runs on two psim workers; three checkpoints are taken while it runs; the figures
  are the median pause (request to every region let go) and the checkpoint's size (one over 16 MiB
  goes to a file in PSTACK_CHECKPOINT_DIR, here a temporary directory).
* Cost: the 2-region multi-token ring of 1,000 devices run to its end without checkpoints and with
  one every 10 s (every 1 s with ``--quick``, on a shorter run), alternating, 2 runs of each; the
  figure is the median wall time with checkpoints against the median without it.  Target: under
  5% more.  Beside it, from the engines' wire counters (PSTACK_WIRE_STATS), the elements the
  regions sent with checkpoints against without: 1.0 when the pauses left the regions exchanging
  the same rounds (a pause that merged two rounds into one burst made the lockstep ring slower for
  the rest of its run), a figure the machine's load does not move.

Everything runs on a private redis-server and private workers.  Figures go to
bench/out/checkpoint_bench.json (bench/figures.py) for bench/suite.py.

    .venv/bin/python bench/checkpoint_bench.py [--quick]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import ring  # noqa: E402
from figures import Figure, write_figures  # noqa: E402

from pstack_tasks.exceptions import ProcessError  # noqa: E402
from pstack_tasks.fleet.client import kill, run, status  # noqa: E402
from pstack_tasks.fleet.persistence.checkpoints import checkpoint  # noqa: E402
from pstack_tasks.native.redis_server import EmbeddedRedis  # noqa: E402
from pstack_tasks.worker.local import Fleet, use_stack  # noqa: E402

COST_TARGET = 0.05


def pause_and_size(tmp: Path, devices: int) -> tuple[float, int]:
    """Median pause (s) and size (bytes) of three checkpoints of a running ring of ``devices``."""
    app = tmp / f"ring-{devices}.xml"
    with app.open("w") as out:
        ring.write_ring(devices, 0xFFFFFFFF, out)  # never ends by itself: killed after the checkpoints
    # two halves: only two edges cross regions (with every hop crossing, a million tokens in flight
    # stall the split ring on main too: see bench/README.md)
    f = run(app, rmap={f"n{i}": int(i >= devices // 2) for i in range(devices)}, async_=True)
    try:
        deadline = time.monotonic() + 600
        while status(f.pid)["delivered"] == 0:
            if time.monotonic() > deadline or status(f.pid)["state"] not in ("Submitted", "Waiting", "Running"):
                raise SystemExit(f"the {devices}-device ring did not start: {status(f.pid)['reason']}")
            time.sleep(0.2)
        try:
            taken = [checkpoint(f.pid, timeout=120) for _ in range(3)]
        except ProcessError as e:
            s = status(f.pid)
            raise SystemExit(f"no checkpoint of the {devices}-device ring: {e} ({s['state']}: {s['reason']})") from None
    finally:
        kill(f.pid)
    for t in taken:
        print(f"  checkpoint {t['id']}: {t['size']} bytes, paused {t['pause_seconds']:.3f} s", flush=True)
    return statistics.median(t["pause_seconds"] for t in taken), int(statistics.median(t["size"] for t in taken))


def wire_elements(stats: Path, since: int) -> tuple[int, int]:
    """Elements every region sent in the runs whose PSTACK_WIRE_STATS lines start at byte ``since``
    (docs/engine-protocol.md), and where the file ends now."""
    text = stats.read_text() if stats.exists() else ""
    sent = sum(int(line.split("elements out ")[1].split()[0]) for line in text[since:].splitlines()
               if "elements out " in line)
    return sent, len(text)


def run_seconds(app: Path, n: int, every: float, stats: Path) -> tuple[float, int]:
    """Wall seconds of one run of the ring, and the elements its regions sent."""
    _, since = wire_elements(stats, 0)
    t0 = time.monotonic()
    result = run(app, rmap=ring.ring_rmap(n, 2), checkpoint_every=every)
    assert result["metrics"]["Delivered messages"] > 0
    seconds = time.monotonic() - t0
    return seconds, wire_elements(stats, since)[0]


def cost(tmp: Path, n: int, m: int, every: float, rounds: int, stats: Path) -> tuple[float, float, float]:
    """Median wall seconds of the ring without and with checkpoints every ``every`` s, and the
    elements sent with checkpoints against without (1.0: the checkpoints did not change how the
    regions exchange rounds; a machine's load cannot change that figure, as it changes seconds)."""
    app = tmp / "ring-cost.xml"
    app.write_text(ring.generate_ring(n, m))
    run_seconds(app, n, 0, stats)  # warm: engine built, instance cached
    plain, with_ckpt, elements = [], [], []
    for _ in range(rounds):
        (p, ep), (w, ew) = run_seconds(app, n, 0, stats), run_seconds(app, n, every, stats)
        plain.append(p)
        with_ckpt.append(w)
        elements.append(ew / ep if ep else 0.0)
        print(f"  without {p:.2f} s ({ep} elements), with checkpoints every {every:g} s {w:.2f} s ({ew} elements)",
              flush=True)
    return statistics.median(plain), statistics.median(with_ckpt), statistics.median(elements)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100,000 devices; cost over ~6 s runs, checkpoint every 1 s")
    args = ap.parse_args(argv)
    big, n, m, every, rounds = (100_000, 1000, 20_000, 1.0, 2) if args.quick else (1_000_000, 1000, 150_000, 10.0, 2)
    tmpdir = tempfile.mkdtemp(prefix="checkpoint-bench-")
    stats = Path(tmpdir) / "wire-stats.txt"
    os.environ["PSTACK_WIRE_STATS"] = str(stats)  # the workers' engines append their wire counters
    with EmbeddedRedis() as server, use_stack(server.url, "bench:"):
        fleet = Fleet(server.url, "bench:")
        try:
            fleet.start("psim", "ck1", 1)
            fleet.start("psim", "ck2", 1)
            fleet.start(None, "ck", 2, control=True)
            fleet.wait_registered([("psim", "ck1"), ("psim", "ck2")])
            tmp = Path(tmpdir)
            os.environ["PSTACK_CHECKPOINT_DIR"] = str(tmp / "checkpoints")  # a big one goes to a file
            print(f"== checkpoints of a running {big}-device ring", flush=True)
            pause, size = pause_and_size(tmp, big)
            print(f"== the {n}-device ring, limit {m}, with and without checkpoints", flush=True)
            plain, with_ckpt, elements = cost(tmp, n, m, every, rounds, stats)
        finally:
            fleet.close()
            shutil.rmtree(tmpdir, ignore_errors=True)
    share = with_ckpt / plain - 1
    figures = [
        Figure(f"checkpoint pause ({big} devices, 2 regions)", pause, "s", False),
        Figure(f"checkpoint size ({big} devices)", size / 2**20, "MiB", False),
        Figure(f"ring run with checkpoints every {every:g} s", with_ckpt, "s", False, plain, "no checkpoints",
               f"< {COST_TARGET:.0%} more", share < COST_TARGET),
        Figure("wire elements sent, with checkpoints / without", elements, "x", False, 1.0, "the same rounds",
               "within 1%", abs(elements - 1) <= 0.01),
    ]
    for fig in figures:
        print(f"{fig.name}: {fig.value:.3f} {fig.unit}" + (f" (baseline {fig.baseline:.3f})" if fig.baseline else ""),
              flush=True)
    print(f"cost of checkpoints every {every:g} s: {share:+.1%} of run time", flush=True)
    write_figures("checkpoint_bench", figures, quick=args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
