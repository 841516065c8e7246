"""Snapshots, checkpoints, restart and recovery of a process of ONE region (docs/persistence.md,
"One region"): its worker takes the request from the region's queue and its engine writes the dump
on SIGUSR1.  A snapshot mid-run is a consistent cut (every token in a device, none in flight); a
1-region checkpoint restarted on 2 regions, a 2-region one restarted on 1, and a 1-region process
that lost its worker all end exactly as an uninterrupted run."""
from __future__ import annotations

from pathlib import Path

import pytest

from pstack_tasks.fleet.client import block, kill, run, status
from pstack_tasks.fleet.persistence.api import restart
from pstack_tasks.fleet.persistence.checkpoints import checkpoint, checkpoints
from pstack_tasks.fleet.persistence.recovery import recoveries
from pstack_tasks.fleet.persistence.snapshots import snapshot
from pstack_tasks.native.simulate import psim
from support.apps import split, token_ring
from support.faults import wait_for
from support.fleet import WorkerFleet

DEVICES = 30
NAMES = [f"n{i}" for i in range(DEVICES)]
#: a few hundred nanoseconds per message, so that one region runs for seconds, not milliseconds
SLOW = "for (int k = 0; k < 150; ++k) deviceState->sum += 1e-12 * k;"
#: two contiguous halves: two edges cross, so a 2-region run is nearly as fast as one region
HALVES = {n: 0 if i < DEVICES // 2 else 1 for i, n in enumerate(NAMES)}


def _ring(tmp_path: Path, limit: int) -> tuple[Path, dict[str, dict[str, object]]]:
    app = tmp_path / "ring.xml"
    app.write_text(token_ring(DEVICES, limit, on_receive_extra=SLOW))
    return app, psim(str(app), options={"quiet": True})["states"]


def _settle(fleet: WorkerFleet) -> None:
    """After a kill: its engines gone, every slot free.  No pause after that: whatever of the
    killed run is still ending belongs to its run, and cannot end the restarted one (docs/
    persistence.md, "Runs"; tests/test_restart_after_kill.py restarts at once, 20 times)."""
    wait_for(lambda: not fleet.leftovers() and not any(w["busy"] for w in fleet.fleet.ledger().fleet()), 30,
             "the killed run's regions ending")


def test_a_one_region_process_is_snapshot_and_checkpointed_and_restarts_on_two_regions(
        tmp_path: Path, on_fleet: WorkerFleet) -> None:
    limit = 600_000  # about 3 s of run: the snapshot and the checkpoint both come before its end
    app, reference = _ring(tmp_path, limit)
    f = run(app, async_=True)
    wait_for(lambda: status(f.pid)["delivered"] > 0, 60, "the ring running")
    snap = snapshot(f.pid)
    delivered = snap["metrics"]["Delivered messages"]
    assert 0 < delivered < DEVICES * limit, snap["metrics"]
    assert list(snap["regions"]) == ["0"] and snap["in_flight"] == 0
    states = snap["states"]
    assert sorted(states) == sorted(NAMES)
    assert sum(s["counter"] for s in states.values()) == delivered
    assert sum(s["pending"] for s in states.values()) == DEVICES  # nothing in flight: every token in a device
    assert 0 < snap["pause_seconds"] < 10
    taken = checkpoint(f.pid)
    assert taken["regions"] == [0] and delivered <= taken["delivered"] < DEVICES * limit
    assert checkpoints(f.pid)[-1]["id"] == taken["id"]
    kill(f.pid)
    _settle(on_fleet)
    result = block(restart(f.pid, rmap=HALVES), timeout=180)
    assert sorted(result["regions"]) == ["0", "1"]
    assert result["metrics"]["Delivered messages"] == DEVICES * limit
    assert result["states"] == reference


def test_a_two_region_checkpoint_restarts_in_one_region(tmp_path: Path, on_fleet: WorkerFleet) -> None:
    limit = 60_000
    app = tmp_path / "ring.xml"
    app.write_text(token_ring(DEVICES, limit))
    reference = psim(str(app), options={"quiet": True})["states"]
    f = run(app, rmap=split(NAMES, 2), async_=True)
    wait_for(lambda: status(f.pid)["delivered"] > 0, 60, "the ring running")
    taken = checkpoint(f.pid)
    kill(f.pid)
    _settle(on_fleet)
    assert 0 < taken["delivered"] < DEVICES * limit and taken["regions"] == [0, 1]
    result = block(restart(f.pid, rmap={}), timeout=120)
    assert list(result["regions"]) == ["0"]
    assert result["metrics"]["Delivered messages"] == DEVICES * limit
    assert result["states"] == reference


def test_a_one_region_process_that_finished_first_is_not_snapshot(tmp_path: Path, on_fleet: WorkerFleet) -> None:
    app = tmp_path / "small.xml"
    app.write_text(token_ring(4, 10))
    f = run(app, async_=True)
    block(f, timeout=60)
    with pytest.raises(Exception, match=rf"process {f.pid} is Done: only a running process can be snapshot"):
        snapshot(f.pid)


def test_a_one_region_process_with_checkpoints_recovers_from_a_killed_worker(
        tmp_path: Path, one_worker: WorkerFleet) -> None:
    limit = 300_000
    app, reference = _ring(tmp_path, limit)
    f = run(app, async_=True, checkpoint_every=0.5)
    wait_for(lambda: len(checkpoints(f.pid)) >= 1, 60, "a first checkpoint")
    assert status(f.pid)["state"] == "Running", "the run ended before the kill: make it longer"
    one_worker.fleet.kill("psim@w1")
    wait_for(lambda: status(f.pid)["state"] in ("Recovering", "Failed", "Done"), 60, "the process recovering")
    assert status(f.pid)["state"] == "Recovering", status(f.pid)["reason"]
    one_worker.fleet.start("psim", "w2", 1)
    result = block(f, timeout=180)
    assert result["metrics"]["Delivered messages"] == DEVICES * limit
    assert result["states"] == reference
    assert len(status(f.pid)["recoveries"]) == 1 and len(recoveries(f.pid)) == 1
