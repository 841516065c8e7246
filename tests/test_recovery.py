"""Automatic recovery (docs/persistence.md): a 2-region process taking a checkpoint every second
loses a worker to SIGKILL; it goes Recovering (waiting for slots: one worker is left, it needs
two), a replacement worker joins, and it resumes from its last checkpoint to exactly the result
of an uninterrupted run.  Without checkpoints the same loss still fails it."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pstack_tasks.fleet.client import block, run, status
from pstack_tasks.fleet.persistence.checkpoints import checkpoints
from pstack_tasks.fleet.persistence.recovery import is_worker_loss, recoveries
from pstack_tasks.native.simulate import psim
from support.apps import split, token_ring
from support.faults import wait_for
from support.fleet import WorkerFleet, fleet_env

DEVICES, LIMIT = 30, 150_000
NAMES = [f"n{i}" for i in range(DEVICES)]


@pytest.fixture
def two_workers(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[WorkerFleet]:
    """Two psim workers of one slot each (a 2-region process needs both) and a control worker."""
    monkeypatch.setenv("PSTACK_HEARTBEAT_TTL", "3")
    f = WorkerFleet(redis_url, [("psim", "w1", 1), ("psim", "w2", 1)])
    try:
        with fleet_env(f):
            yield f
    finally:
        f.close()


def test_a_process_with_checkpoints_recovers_from_a_killed_worker_to_the_uninterrupted_result(
        tmp_path: Path, two_workers: WorkerFleet) -> None:
    app = tmp_path / "ring.xml"
    app.write_text(token_ring(DEVICES, LIMIT))
    reference = psim(str(app), options={"quiet": True})
    f = run(app, rmap=split(NAMES, 2), async_=True, checkpoint_every=1)
    wait_for(lambda: len(checkpoints(f.pid)) >= 1, 60, "a first checkpoint")
    assert status(f.pid)["state"] == "Running", "the run ended before the kill: make it longer"
    victim = "w2" if status(f.pid)["hosts"].get("1") == "w2" else "w1"
    two_workers.fleet.kill(f"psim@{victim}")
    wait_for(lambda: status(f.pid)["state"] in ("Recovering", "Failed", "Done"), 60, "the process recovering")
    assert status(f.pid)["state"] == "Recovering", status(f.pid)["reason"]  # one slot left: it waits
    two_workers.fleet.start("psim", "w3", 1)
    result = block(f, timeout=180)
    assert result["metrics"]["Delivered messages"] == DEVICES * LIMIT
    assert result["states"] == reference["states"]
    done = status(f.pid)
    assert done["state"] == "Done" and done["recoveries"] == 1
    (note,) = recoveries(f.pid)
    assert is_worker_loss(note["reason"]) and victim in note["reason"]
    assert 1 <= note["checkpoint"] <= max(c["id"] for c in checkpoints(f.pid))


def test_worker_losses_are_told_from_application_failures() -> None:
    assert is_worker_loss("region 1 on w2 stopped responding (its worker was lost)")
    assert is_worker_loss("region 1: the worker on w2 running it died")
    assert not is_worker_loss("region 1 on w2: handler OnReceive of device 'n3' crashed (SIGSEGV)")
