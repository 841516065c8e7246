"""Automatic recovery (docs/persistence.md): a 2-region process taking a checkpoint every second
loses a worker to SIGKILL; it goes Recovering (waiting for slots: one worker is left, it needs
two), a replacement worker joins, and it resumes from its last checkpoint to exactly the result
of an uninterrupted run.  Recovery is decided by the cause's code (fleet/causes.py), not its
words: a handler that crashes in a checkpointed process still fails it, naming the handler."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from pstack_tasks.exceptions import ProcessFailed
from pstack_tasks.fleet import store
from pstack_tasks.fleet.causes import WORKER_LOST, Cause, is_worker_loss, record_first
from pstack_tasks.fleet.client import block, run, status
from pstack_tasks.fleet.keys import Keys
from pstack_tasks.fleet.persistence.checkpoints import checkpoints
from pstack_tasks.fleet.persistence.recovery import recoveries
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
    assert victim in note["reason"] and ("worker was lost" in note["reason"] or "died" in note["reason"])
    assert 1 <= note["checkpoint"] <= max(c["id"] for c in checkpoints(f.pid))


def test_a_handler_crash_in_a_checkpointed_process_still_fails_naming_the_handler(
        tmp_path: Path, two_workers: WorkerFleet) -> None:
    """Device n3 dereferences NULL half-way through the run, after the first checkpoint: the
    process could resume, but its cause is the application's (``SimulationFailed``), so it fails."""
    crash = f"if (deviceProperties->id == 3 && deviceState->counter == {LIMIT // 2}) {{ volatile int* p = 0; *p = 1; }}"
    app = tmp_path / "crash.xml"
    app.write_text(token_ring(DEVICES, LIMIT, on_receive_extra=crash))
    f = run(app, rmap=split(NAMES, 2), async_=True, checkpoint_every=1)
    with pytest.raises(ProcessFailed) as e:
        block(f, timeout=180)
    assert e.value.state == "Failed" and e.value.error == "SimulationFailed", e.value
    assert "handler OnReceive of pin 'in'" in e.value.reason and "device 'n3' crashed" in e.value.reason
    assert checkpoints(f.pid), "the crash came before the first checkpoint: nothing tested"
    assert status(f.pid)["recoveries"] == 0 and recoveries(f.pid) == []


def test_the_first_cause_is_recorded_with_its_code_and_only_the_first(redis_url: str) -> None:
    """A lost worker is told from an application failure by the code stored with the first cause."""
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    keys = Keys("pstest-causes:")
    try:
        r.hset(keys.proc(7), "state", "Running")
        lost = Cause.worker_lost("region 1 on w2 stopped responding (its worker was lost)")
        assert record_first(r, keys, 7, lost) == lost.text
        assert record_first(r, keys, 7, Cause("region 0 on w1: crashed", "SimulationFailed")) == lost.text
        assert r.hget(keys.proc(7), "error") == WORKER_LOST and is_worker_loss(store.text_hash(r.hgetall(keys.proc(7))))
        assert not is_worker_loss({"state": "Running", "error": "SimulationFailed"})
        assert record_first(r, keys, 8, lost) == lost.text and not r.exists(keys.proc(8))  # no stray record
    finally:
        for key in r.scan_iter("pstest-causes:*"):
            r.delete(key)
