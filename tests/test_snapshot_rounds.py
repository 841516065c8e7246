"""A snapshot's pause leaves the regions exchanging the same rounds as before it.

The multi-token ring with every hop remote runs in lockstep: each region handles its half of the
tokens, sends them to the other in one element, and waits for the other's.  Uninterrupted, each
region sends exactly one element per round (``limit`` of them).  A pause used to leave a region's
queue holding two rounds, taken by one pop and handled as one burst; the rounds then stayed merged
(fewer, bigger elements) and the ring ran with one region working while the other waited (16%
slower with a checkpoint every 10 s: bench/checkpoint_bench.py).  The engines' wire counters
(PSTACK_WIRE_STATS, docs/engine-protocol.md) show it without timing anything."""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from pstack_tasks.fleet.client import block, run, status
from pstack_tasks.fleet.persistence.snapshots import snapshot
from support.apps import token_ring
from support.faults import wait_for
from support.fleet import started_fleet

DEVICES, LIMIT, PAUSES = 200, 30_000, 6


@pytest.fixture
def counted_fleet(redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Two one-slot psim workers whose engines append their wire counters to the returned file."""
    stats = tmp_path / "wire.txt"
    monkeypatch.setenv("PSTACK_WIRE_STATS", str(stats))
    with started_fleet(redis_url, [("psim", "left", 1), ("psim", "right", 1)]):
        yield stats


def elements_out(stats: Path) -> dict[int, int]:
    found = re.findall(r"wire region (\d+): .*?elements out (\d+)", stats.read_text())
    return {int(region): int(n) for region, n in found}


def test_snapshots_mid_run_leave_the_split_ring_sending_one_element_per_round(
        tmp_path: Path, counted_fleet: Path) -> None:
    app = tmp_path / "ring.xml"
    app.write_text(token_ring(DEVICES, LIMIT))
    f = run(app, rmap={f"n{i}": i % 2 for i in range(DEVICES)}, async_=True)
    wait_for(lambda: status(f.pid)["delivered"] > 0, 60, "the ring running")
    taken = 0
    for _ in range(PAUSES):
        if status(f.pid)["state"] != "Running":
            break
        try:
            snapshot(f.pid)
            taken += 1
        except Exception:  # the run ended under the request: fewer pauses, same check
            break
    result = block(f, timeout=120)
    assert result["metrics"]["Delivered messages"] == DEVICES * LIMIT
    assert taken >= 2, "the ring ended before two snapshots: make LIMIT larger"
    assert elements_out(counted_fleet) == {0: LIMIT, 1: LIMIT}
