"""Checkpoints and restart (docs/persistence.md): a checkpoint taken mid-run, the process killed,
then restarted from that checkpoint as the same pid on another region map gives exactly the result
of an uninterrupted run; checkpoints are listed, kept to the last K, and refused when they cannot be."""
from __future__ import annotations

from pathlib import Path

import pytest

from pstack_tasks.exceptions import ProcessError
from pstack_tasks.fleet.client import block, kill, run, status
from pstack_tasks.fleet.persistence.checkpoints import checkpoint, checkpoints
from pstack_tasks.fleet.persistence.restart import restart
from pstack_tasks.native.simulate import psim
from support.apps import split, token_ring
from support.faults import wait_for
from support.fleet import WorkerFleet

DEVICES, LIMIT = 30, 60_000
NAMES = [f"n{i}" for i in range(DEVICES)]


def test_restart_from_a_named_checkpoint_on_another_region_map_gives_the_uninterrupted_result(
        tmp_path: Path, on_fleet: WorkerFleet, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PSTACK_CHECKPOINTS_KEPT", "2")
    app = tmp_path / "ring.xml"
    app.write_text(token_ring(DEVICES, LIMIT))
    reference = psim(str(app), options={"quiet": True})
    f = run(app, rmap=split(NAMES, 3), async_=True)
    wait_for(lambda: status(f.pid)["delivered"] > 0, 60, "the ring running")
    first = checkpoint(f.pid)
    taken = [first, checkpoint(f.pid), checkpoint(f.pid)]
    assert [c["id"] for c in checkpoints(f.pid)] == [taken[1]["id"], taken[2]["id"]]  # the last K
    chosen = taken[1]
    assert 0 < chosen["delivered"] < DEVICES * LIMIT and chosen["where"] == "redis" and chosen["size"] > 0
    assert status(f.pid)["state"] == "Running"
    kill(f.pid)
    with pytest.raises(ProcessError, match=f"process {f.pid} has no checkpoint {first['id']}"):
        restart(f.pid, checkpoint=first["id"])
    again = restart(f.pid, checkpoint=chosen["id"], rmap=split(NAMES, 2))
    assert again.pid == f.pid
    result = block(again, timeout=120)
    assert result["metrics"]["Delivered messages"] == DEVICES * LIMIT
    assert sorted(result["regions"]) == ["0", "1"]
    assert result["states"] == reference["states"]


def test_a_running_process_cannot_be_restarted_and_an_ended_one_needs_a_checkpoint(
        tmp_path: Path, on_fleet: WorkerFleet) -> None:
    app = tmp_path / "small.xml"
    app.write_text(token_ring(4, 10))
    f = run(app, rmap=split(NAMES[:4], 2), async_=True)
    block(f, timeout=60)
    with pytest.raises(ProcessError, match=f"process {f.pid} has no checkpoint$"):
        restart(f.pid)
