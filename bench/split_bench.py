"""Splits that pay: the engine run time of gals_heat_fix split by rows into 2 and 4 regions against
the same application in 1 region, and the remote message rate of the multi-token ring with every
hop crossing regions (2 and 4 regions), all in the same run.

Workloads: gals_heat_fix 300x300, maxTime 1500 (../shared/data/bench: 90k devices, 535 M
deliveries; ``--quick``: a 100x100 grid, maxTime 300, generated here with the same graph type and
instance structure), split by grid rows (device ids are ``c_<row>_<col>`` / ``v_<row>_<col>``); the
ring of bench/ring.py, N=1000 nodes, M=1000 (``--quick``: M=200), node i in region i % K.  Each
application is parsed once; the runs take turns in rounds (1, 2, 4 regions, then again) and the
figures are medians over the rounds.  Engine time is the merged result's "Run seconds" (the
slowest region); loading is not counted (another benchmark measures the loader).

Figures (bench/figures.py): gals_heat 2 and 4 regions, engine seconds with baseline = 1 region
in the same run (ratio = speed-up; targets >= 1.3 and >= 1.0); ring remote messages/s in 2
regions (target >= 2 M/s) and 4 regions (baseline = 2 regions: the aggregate must grow), and the
ring runs' CPU seconds (engines, socat relays and the run's private redis-server; report only).

    .venv/bin/python bench/split_bench.py [--quick] [--rounds N]
"""
from __future__ import annotations

import argparse
import re
import resource
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data_paths import BIG_GALS, DATA  # noqa: E402
from figures import Figure, write_figures  # noqa: E402
from ring import ring_rmap, write_ring  # noqa: E402

from pstack_tasks.native.local_run import run_regions  # noqa: E402
from pstack_tasks.native.options import RunOptions  # noqa: E402
from pstack_tasks.native.prepare import Prepared, prepare  # noqa: E402
from pstack_tasks.native.region_run import run_single  # noqa: E402

TYPE_SOURCE = DATA / "poets-corpus" / "gals_heat_fix_8_20.xml"  # the same GraphType as BIG_GALS
GRID_ID = re.compile(r"^[cv]_(\d+)_(\d+)$")


def row_split(device_ids: list[str], rows: int, regions: int) -> dict[str, int]:
    """Grid rows in ``regions`` contiguous bands: rows r*K//rows; devices without coordinates
    (the ``finished`` exit node) stay in region 0."""
    rmap = {}
    for d in device_ids:
        m = GRID_ID.match(d)
        if m:
            rmap[d] = min(regions - 1, int(m[1]) * regions // rows)
    return rmap


def gals_heat_xml(n: int, max_time: int) -> str:
    """A gals_heat_fix instance of an n x n grid as the public generator lays it out: Dirichlet
    boundary devices (no corners) and a heat source at the centre first, then the exit node, then
    the cells row by row; each device joined to its 4 neighbours unless both are on the boundary;
    every device reports to ``finished``."""
    text = TYPE_SOURCE.read_text()
    graph_type = text[text.index("<GraphType"):text.index("</GraphType>") + len("</GraphType>")]
    centre = (n // 2, n // 2)

    def boundary(r: int, c: int) -> bool:
        return r in (0, n - 1) or c in (0, n - 1)

    def corner(r: int, c: int) -> bool:
        return r in (0, n - 1) and c in (0, n - 1)

    def kind(r: int, c: int) -> str:
        return "v" if boundary(r, c) or (r, c) == centre else "c"

    cells = [(r, c) for r in range(n) for c in range(n) if not corner(r, c)]
    dev, edges = [], []
    for r, c in cells:
        if kind(r, c) == "v":
            hood = 4 if (r, c) == centre else 1
            top = 83886080 if (r, c) == centre else 16777216
            dev.append(f'<DevI id="v_{r}_{c}" type="dirichlet_variable"><P>"updateDelta": {r * 327680 // n}, '
                       f'"updateMax": {top}, "neighbours": {hood}</P></DevI>')
    dev.append(f'<DevI id="finished" type="exit_node"><P>"fanin": {len(cells)}</P></DevI>')
    for i, (r, c) in enumerate(cells):
        if kind(r, c) == "c":
            dev.append(f'<DevI id="c_{r}_{c}" type="cell"><P>"iv": {(i * 7919) % 33554432 - 16777216}, '
                       f'"nhood": 4, "wSelf": 8388608</P></DevI>')
    for r, c in cells:
        me = f"{kind(r, c)}_{r}_{c}"
        for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
            if not (0 <= rr < n and 0 <= cc < n) or corner(rr, cc) or (boundary(r, c) and boundary(rr, cc)):
                continue
            props = '><P>"w": 2097152</P></EdgeI>' if kind(r, c) == "c" else " />"
            edges.append(f'<EdgeI path="{me}:in-{kind(rr, cc)}_{rr}_{cc}:out"{props}')
        edges.append(f'<EdgeI path="finished:done-{me}:finished" />')
    return (f'<?xml version="1.0"?>\n<Graphs xmlns="https://poets-project.org/schemas/virtual-graph-schema-v3">\n'
            f'{graph_type}\n<GraphInstance id="heat_{n}_{n}" graphTypeId="gals_heat_fix">\n'
            f'<Properties>"exportDeltaMask": 15, "maxTime": {max_time}</Properties>\n<DeviceInstances>\n'
            + "\n".join(dev) + "\n</DeviceInstances>\n<EdgeInstances>\n" + "\n".join(edges)
            + "\n</EdgeInstances>\n</GraphInstance>\n</Graphs>\n")


def engine_run(prep: Prepared, rmap: dict[str, int] | None) -> dict[str, Any]:
    """One run's merged metrics (no states)."""
    opts = RunOptions(quiet=True, states=False)
    result = run_regions(prep, rmap, opts) if rmap else run_single(prep, opts)
    metrics: dict[str, Any] = result["metrics"]
    return metrics


def rounds_of(runs: dict[str, Callable[[], float]], rounds: int) -> dict[str, float]:
    """Every run once per round, in turn; the median of each."""
    seen: dict[str, list[float]] = {name: [] for name in runs}
    for i in range(rounds):
        for name, run in runs.items():
            seen[name].append(run())
            print(f"  round {i + 1}: {name}: {seen[name][-1]:.3f}", file=sys.stderr)
    return {name: statistics.median(values) for name, values in seen.items()}


def gals_figures(path: Path, rows: int, rounds: int) -> list[Figure]:
    prep = prepare(path)
    ids = list(prep.app.instance.index)
    delivered: set[int] = set()

    def run(regions: int) -> Callable[[], float]:
        def once() -> float:
            m = engine_run(prep, row_split(ids, rows, regions) if regions > 1 else None)
            delivered.add(int(m["Delivered messages"]))
            return float(m["Run seconds"])
        return once

    med = rounds_of({f"gals_heat {k} region(s)": run(k) for k in (1, 2, 4)}, rounds)
    if len(delivered) != 1:
        raise SystemExit(f"split_bench: gals_heat runs delivered different counts: {sorted(delivered)}")
    one = med["gals_heat 1 region(s)"]
    out = []
    for k, target in ((2, 1.3), (4, 1.0)):
        value = med[f"gals_heat {k} region(s)"]
        out.append(Figure(f"gals_heat {k} regions engine run (speed-up vs 1 region)", value, "s",
                          higher_is_better=False, baseline=one, baseline_name="1 region, same run",
                          target=f"speed-up >= {target}", passed=one / value >= target))
    return out


def children_cpu() -> float:
    """CPU seconds of this process's finished children: a split run's engines, socat relays and
    private redis-server."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def ring_figures(path: Path, n: int, m: int, rounds: int) -> list[Figure]:
    prep = prepare(path)
    cpu: dict[int, list[float]] = {2: [], 4: []}

    def run(regions: int) -> Callable[[], float]:
        def once() -> float:
            before = children_cpu()
            metrics = engine_run(prep, ring_rmap(n, regions))
            cpu[regions].append(children_cpu() - before)
            if metrics["Delivered messages"] != n * m:
                raise SystemExit(f"split_bench: the ring delivered {metrics['Delivered messages']}, not {n * m}")
            print(f"  ring {regions} regions: run {metrics['Run seconds']:.3f} s, CPU {cpu[regions][-1]:.3f} s "
                  "(engines, relays, Redis)", file=sys.stderr)
            return float(metrics["Remote messages sent"]) / float(metrics["Run seconds"])
        return once

    med = rounds_of({f"ring {k} regions": run(k) for k in (2, 4)}, rounds)
    two, four = med["ring 2 regions"], med["ring 4 regions"]
    return [Figure("ring 2 regions remote messages/s", two, "msg/s", target=">= 2e6", passed=two >= 2e6),
            Figure("ring 4 regions remote messages/s", four, "msg/s", baseline=two, baseline_name="2 regions, same run",
                   target="> 2 regions", passed=four > two)] + [
            Figure(f"ring {k} regions CPU (engines, relays, Redis)", statistics.median(cpu[k]), "s",
                   higher_is_better=False) for k in (2, 4)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a 100x100 grid and a shorter ring (seconds)")
    ap.add_argument("--rounds", type=int, default=0, help="rounds of interleaved runs (default 3, quick 2)")
    args = ap.parse_args()
    rounds = args.rounds or (2 if args.quick else 3)
    with tempfile.TemporaryDirectory() as tmp:
        gals = Path(tmp) / "gals_heat.xml"
        if args.quick:
            rows = 100
            gals.write_text(gals_heat_xml(rows, 300))
        else:
            rows, gals = 300, BIG_GALS  # read as it is, compressed
        n, m = 1000, (200 if args.quick else 1000)
        ring = Path(tmp) / "ring.xml"
        with ring.open("w") as out:
            write_ring(n, m, out)
        figures = gals_figures(gals, rows, rounds) + ring_figures(ring, n, m, rounds)
    path = write_figures("split_bench", figures, quick=args.quick, rounds=rounds)
    for f in figures:
        ratio = f"  ratio {f.ratio:.2f}" if f.ratio else ""
        verdict = "report only" if f.passed is None else f"target {f.target}: {'ok' if f.passed else 'NOT MET'}"
        print(f"{f.name}: {f.value:.4g} {f.unit}{ratio}  {verdict}")
    print(f"figures: {path}")
    return 0 if args.quick or all(f.passed is not False for f in figures) else 1


if __name__ == "__main__":
    raise SystemExit(main())
