"""Live snapshots of running processes (docs/persistence.md): every region pauses at one barrier,
the cut is consistent (every token of the ring is in a device or in flight, exactly once), the
counters lie strictly between start and end, and the run ends as if nothing had happened."""
from __future__ import annotations

from pathlib import Path

import pytest

from pstack_tasks.exceptions import ProcessError
from pstack_tasks.fleet.client import block, kill, run, status
from pstack_tasks.fleet.persistence.snapshots import snapshot
from support.apps import split, token_ring
from support.faults import wait_for
from support.fleet import WorkerFleet

DEVICES, LIMIT = 30, 100_000


def _ring(tmp_path: Path) -> Path:
    app = tmp_path / "ring.xml"
    app.write_text(token_ring(DEVICES, LIMIT))
    return app


def test_a_snapshot_mid_run_of_a_3_region_ring_is_consistent_and_leaves_the_result_alone(
        tmp_path: Path, on_fleet: WorkerFleet) -> None:
    names = [f"n{i}" for i in range(DEVICES)]
    f = run(_ring(tmp_path), rmap=split(names, 3), async_=True)
    wait_for(lambda: status(f.pid)["delivered"] > 0, 60, "the ring running")
    # status per region while it runs: counters, its engine's memory and CPU, its queue
    wait_for(lambda: all("memory_mb" in p for p in status(f.pid)["progress"].values()), 30, "engine usage")
    live = status(f.pid)
    assert live["state"] == "Running" and sorted(live["progress"]) == [0, 1, 2]
    for p in live["progress"].values():
        assert p["memory_mb"] > 0 and p["cpu_seconds"] >= 0 and p["queue"] >= 0 and p["delivered"] >= 0
    snap = snapshot(f.pid)
    total = DEVICES * LIMIT
    delivered = snap["metrics"]["Delivered messages"]
    assert 0 < delivered < total, snap["metrics"]
    assert sorted(snap["regions"]) == ["0", "1", "2"]
    assert all(0 < r["delivered"] < total for r in snap["regions"].values())
    states = snap["states"]
    assert sorted(states) == sorted(names)
    # every delivery counted once, in the device that took it
    assert sum(s["counter"] for s in states.values()) == delivered
    # no token lost or doubled by the cut: each is pending in a device or in flight between regions
    if all(s["counter"] < LIMIT for s in states.values()):
        assert sum(s["pending"] for s in states.values()) + snap["in_flight"] == DEVICES
    assert 0 < snap["pause_seconds"] < 10
    result = block(f, timeout=120)
    assert result["metrics"]["Delivered messages"] == total
    assert all((s["counter"], s["pending"]) == (LIMIT, 0) for s in result["states"].values())


def test_a_process_that_is_not_running_cannot_be_snapshot(tmp_path: Path, on_fleet: WorkerFleet) -> None:
    app = tmp_path / "small.xml"
    app.write_text(token_ring(4, 10))
    f = run(app, rmap=split([f"n{i}" for i in range(4)], 2), async_=True)
    block(f, timeout=60)
    with pytest.raises(ProcessError, match=rf"process {f.pid} is Done: only a running process can be snapshot"):
        snapshot(f.pid)


def test_a_region_that_cannot_pause_fails_the_snapshot_in_one_line_and_the_others_carry_on(
        tmp_path: Path, on_fleet: WorkerFleet) -> None:
    """n2's handler never returns: region 1 never reaches a poll, so the snapshot fails after its
    timeout naming region 1; region 0, which paused, is let go (the kill then ends both)."""
    app = tmp_path / "stuck.xml"
    stuck = "if (deviceProperties->id == 2) { while (1) usleep(1000); }"
    app.write_text(token_ring(4, 1_000_000, on_receive_extra=stuck))
    f = run(app, rmap={"n0": 0, "n1": 0, "n2": 1, "n3": 1}, async_=True)
    wait_for(lambda: status(f.pid)["state"] == "Running" and status(f.pid)["delivered"] > 0, 60, "the ring running")
    with pytest.raises(ProcessError) as failed:
        snapshot(f.pid, timeout=1)
    assert str(failed.value) == (f"snapshot of process {f.pid}: region(s) 1 did not pause within 1 s; "
                                 "every region carried on")
    assert kill(f.pid) == "Killed"
