"""Workers stopping and colliding: SIGTERM leaves admission at once and ends within the soft
shutdown timeout; a second worker under a taken name is refused; engine and socat SIGKILL."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pstack_tasks.exceptions import ProcessFailed
from pstack_tasks.fleet.client import block, engines, run, status
from support.apps import variant
from support.faults import FOREVER, RING, engines_of, relays_of, wait_for
from support.fleet import WorkerFleet, started_fleet

PSTACK = [sys.executable, "-m", "pstack_tasks.ui.cli.pstack"]


@pytest.fixture(scope="module")
def own_fleet(redis_url: str) -> Iterator[WorkerFleet]:
    with started_fleet(redis_url, [("psim", "w1", 2), ("psim", "w2", 2)]) as fleet:
        yield fleet


def slots() -> dict[str, int]:
    return {w["host"]: w["slots"] for w in engines() if w["alive"]}


def test_engine_sigkill_fails_the_process_at_once(tmp_path: Path, own_fleet: WorkerFleet) -> None:
    f = run(variant(RING, *FOREVER, tmp_path), rmap={"n1": 1}, async_=True)
    wait_for(lambda: len(engines_of(own_fleet)) >= 2, 20, "two engines running")
    t0 = time.monotonic()
    os.kill(engines_of(own_fleet)[0][0], signal.SIGKILL)
    with pytest.raises(ProcessFailed) as e:
        block(f, timeout=10)
    assert time.monotonic() - t0 < 3
    assert e.value.state == "Failed" and "engine killed by signal 9" in e.value.reason
    wait_for(lambda: not own_fleet.leftovers(), 3, "engines and relays gone")


def test_socat_sigkill_fails_the_process_at_once(tmp_path: Path, own_fleet: WorkerFleet) -> None:
    f = run(variant(RING, *FOREVER, tmp_path), rmap={"n1": 1}, async_=True)
    wait_for(lambda: len(engines_of(own_fleet)) >= 2 and len(relays_of(own_fleet)) >= 2, 20, "engines on relays")
    t0 = time.monotonic()
    os.kill(relays_of(own_fleet)[0], signal.SIGKILL)
    with pytest.raises(ProcessFailed) as e:
        block(f, timeout=10)
    assert time.monotonic() - t0 < 3
    assert e.value.state == "Failed" and e.value.reason.startswith("region ")
    wait_for(lambda: not own_fleet.leftovers(), 3, "engines and relays gone")


def test_a_second_worker_with_a_taken_name_is_refused(own_fleet: WorkerFleet) -> None:
    before = slots()
    p = subprocess.run([*PSTACK, "worker", "-e", "psim", "-n", "w2", "-s", "1"], capture_output=True, text=True,
                       timeout=60, env=own_fleet.fleet.env)
    assert p.returncode == 5
    assert p.stderr.strip().startswith("pstack: error: worker name psim@w2 is taken by a running worker")
    # the same by hand with celery: the worker waits out one heartbeat TTL, then refuses and stops
    t0 = time.monotonic()
    original = own_fleet.fleet.workers["psim@w2"]
    twin = own_fleet.fleet.start("psim", "w2", 1)
    own_fleet.fleet.workers["psim@w2"] = original  # the fleet's own w2 stays the registered one
    try:
        twin.wait(40)
        assert time.monotonic() - t0 < 40
        err = twin.stderr.read().decode() if twin.stderr else ""
        assert "worker name psim@w2 is taken by a running worker" in err
        assert slots() == before  # no flip-flop: w2 still has its 2 slots
    finally:
        if twin.poll() is None:
            twin.kill()
            twin.wait(5)
        if twin.stderr:
            twin.stderr.close()


def test_sigterm_leaves_admission_at_once_and_stops_within_the_soft_timeout(tmp_path: Path,
                                                                            own_fleet: WorkerFleet) -> None:
    """Run last: w1 is gone afterwards."""
    f = run(variant(RING, *FOREVER, tmp_path), rmap={"n1": 1}, rcon={0: "w1", 1: "w1"}, async_=True)
    wait_for(lambda: len(engines_of(own_fleet)) >= 2, 20, "two engines running on w1")
    worker = own_fleet.fleet.workers["psim@w1"]
    t0 = time.monotonic()
    own_fleet.fleet.kill("psim@w1", signal.SIGTERM)
    left = wait_for(lambda: "w1" not in slots(), 3, "w1 gone from the ledger")
    assert left < 3
    later = run(variant(RING, *FOREVER, tmp_path, out="later.xml"), rmap={"n1": 1}, async_=True)
    wait_for(lambda: status(later.pid)["state"] == "Running", 10, "the later process admitted")
    assert set(status(later.pid)["hosts"].values()) == {"w2"}
    with pytest.raises(ProcessFailed) as e:
        block(f, timeout=20)
    assert e.value.reason.startswith("region ") and "its worker was stopped (SIGTERM)" in e.value.reason
    worker.wait(20)
    assert time.monotonic() - t0 < 10 + 3  # worker_soft_shutdown_timeout, and a loaded machine
    own_fleet.fleet.workers.pop("psim@w1")
    if worker.stderr:
        worker.stderr.close()
    from pstack_tasks.fleet.client import kill
    assert kill(later.pid) == "Killed"
    wait_for(lambda: not own_fleet.leftovers(), 5, "engines and relays gone")
