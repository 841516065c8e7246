"""A fleet of engine workers only (no `pstack worker --control`): processes still end (every
worker merges and reaps, docs/fleet.md), and a SIGKILLed worker fails its process by the reaper."""
from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pstack_tasks.exceptions import ProcessFailed
from pstack_tasks.fleet.client import block, run, status
from support.apps import variant
from support.faults import FOREVER, RING, engines_of, wait_for
from support.fleet import WorkerFleet, descendants, processes_table, started_fleet
from support.paths import PSTACK


@pytest.fixture(scope="module")
def bare_fleet(redis_url: str) -> Iterator[WorkerFleet]:
    with started_fleet(redis_url, [("psim", "k1", 2), ("psim", "k2", 2)], control=False) as fleet:
        yield fleet


def test_a_fleet_without_a_control_worker_ends_processes_done(bare_fleet: WorkerFleet) -> None:
    t0 = time.monotonic()
    result = run(PSTACK / RING, rmap={"n1": 1, "n2": 1}, timeout=30)
    assert time.monotonic() - t0 < 30
    assert result["metrics"]["Delivered messages"] == 40
    assert status(result["pid"])["state"] == "Done"
    wait_for(lambda: not bare_fleet.leftovers(), 3, "idle relays closed (PSTACK_RELAY_IDLE)")


def test_sigkill_of_a_worker_fails_the_process_and_leaves_nothing(tmp_path: Path, bare_fleet: WorkerFleet) -> None:
    """The reaper runs on the engine workers too: the process is Failed without a control worker
    (run last in this module: k2 is gone afterwards)."""
    f = run(variant(RING, *FOREVER, tmp_path), rmap={"n1": 1, "n2": 2}, rcon={1: "k2"}, async_=True)
    wait_for(lambda: len(engines_of(bare_fleet)) >= 3, 20, "three engines running")
    victim = bare_fleet.fleet.workers["psim@k2"]
    doomed = {pid for pid, _, _ in descendants({victim.pid})} | {victim.pid}
    bare_fleet.fleet.kill("psim@k2")
    took = wait_for(lambda: status(f.pid)["state"] != "Running", 15, "the process ended by the fleet's reaper")
    assert took < 12  # PSTACK_HEARTBEAT_TTL (6 s) + the reaper's second, on a loaded machine
    with pytest.raises(ProcessFailed) as e:
        block(f, timeout=5)
    assert e.value.state == "Failed"
    assert e.value.reason == "region 1 on k2 stopped responding (its worker was lost)"
    wait_for(lambda: not bare_fleet.leftovers(), 5, "the other regions' engines gone")
    victim.wait(5)  # reap our own child: a zombie would still be listed
    wait_for(lambda: not (doomed & {pid for pid, _, _ in processes_table()}), 5, "the killed worker's processes gone")
