"""Fair sharing on a real fleet (Celery workers, dummy engines): while one user's batch of 200
processes fills the fleet, another user's single run starts within one run's duration, and a
third user's gang of two regions is still admitted (docs/fleet.md, "Admission")."""
from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from pstack_tasks.fleet.client import Future, block, kill, run, status
from support.commands import RING
from support.fleet import WorkerFleet, started_fleet

BATCH = 200
RUN_SECONDS = 1.0  # each of the batch's runs; the fleet has two slots


@pytest.fixture(scope="module")
def two_slots(redis_url: str) -> Iterator[WorkerFleet]:
    with started_fleet(redis_url, [("dummy", "fair", 2)]) as f:
        yield f


def _as(user: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PSTACK_USER", user)


def test_a_single_run_starts_within_one_run_while_another_users_batch_fills_the_fleet(
        two_slots: WorkerFleet, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given alice's batch of 200 one-second runs on a fleet of two slots
    _as("alice", monkeypatch)
    batch: list[Future] = [run(RING, engine="dummy", options={"seconds": RUN_SECONDS}, async_=True)
                           for _ in range(BATCH)]
    r, keys = two_slots.fleet.ledger().r, two_slots.fleet.ledger().keys
    try:
        # When bob submits one run
        ahead = int(r.zcard(keys.waiting("dummy")))  # what first come, first served would put before it
        _as("bob", monkeypatch)
        single = run(RING, engine="dummy", options={"seconds": 0.2}, async_=True)
        block(single, timeout=120)
        # Then it started within one of alice's runs (plus dispatch, generously), not after ~ahead/2 of them
        bob = status(single.pid)
        waited = bob["started"] - bob["submitted"]
        done = [s for s in (status(f.pid) for f in batch) if s["state"] == "Done"]
        assert done, "none of alice's runs ended"
        one_run = max(s["ended"] - s["started"] for s in done)
        assert ahead >= BATCH // 2, ahead  # first come, first served: bob would have waited ~ahead/2 runs
        started_between = [s for s in (status(f.pid) for f in batch)
                           if s["started"] and bob["submitted"] < s["started"] < bob["started"]]
        assert len(started_between) <= 2, [s["pid"] for s in started_between]  # one slot turnover at most
        assert waited <= one_run + 3.0, (waited, one_run)

        # And carol's gang of two regions (both slots at once) is admitted among alice's runs
        _as("carol", monkeypatch)
        gang = run(RING, rmap={"n1": 1}, engine="dummy", options={"seconds": 0.2}, async_=True)
        block(gang, timeout=120)
        carol = status(gang.pid)
        assert carol["state"] == "Done" and len(carol["hosts"]) == 2
        assert carol["started"] - carol["submitted"] <= 2 * one_run + 3.0, (carol, one_run)
    finally:
        _as("alice", monkeypatch)
        t0 = time.monotonic()
        for f in batch:
            kill(f.pid, wait=0)
        assert time.monotonic() - t0 < 120
