"""A restart right after a kill, with no pause between them (docs/persistence.md, "Runs"): the
killed run's regions may still be ending, and its region tasks still returning, when the new run
starts.  Each belongs to the run before, so none of it can end the new run or count as one of its
regions: the restarted process ends Done with the whole result, every time.  (With the chord of
older versions, about one restart in three of a one-region process ended Done without a result.)"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from pstack_tasks.fleet.client import block, kill, run, status
from pstack_tasks.fleet.persistence.api import restart
from pstack_tasks.fleet.persistence.checkpoints import checkpoint
from pstack_tasks.native.simulate import psim
from support.apps import token_ring
from support.faults import wait_for
from support.fleet import WorkerFleet

DEVICES = 12
#: a few hundred nanoseconds per message: the ring runs for a second or two
SLOW = "for (int k = 0; k < 150; ++k) deviceState->sum += 1e-12 * k;"
#: PSTACK_TEST_RESTARTS=20 for the long version of this test
ROUNDS = int(os.environ.get("PSTACK_TEST_RESTARTS", "3"))


HALVES = {f"n{i}": 2 * i // DEVICES for i in range(DEVICES)}


@pytest.mark.parametrize("rmap", [None, HALVES], ids=["one-region", "two-regions"])
def test_a_restart_right_after_a_kill_ends_with_the_whole_result(tmp_path: Path, on_fleet: WorkerFleet,
                                                                 rmap: dict[str, int] | None) -> None:
    limit = 100_000 if rmap else 1_000_000  # a second or two: a sixth of the split's hops cross regions
    app = tmp_path / "ring.xml"
    app.write_text(token_ring(DEVICES, limit, on_receive_extra=SLOW))
    reference = psim(str(app), options={"quiet": True})["states"]
    for k in range(ROUNDS):
        pid = run(app, rmap=rmap, async_=True).pid
        wait_for(lambda: status(pid)["delivered"] > 0, 60, "the ring running")  # noqa: B023 (waited for here)
        checkpoint(pid)
        kill(pid)
        wait_for(lambda: status(pid)["state"] == "Killed", 30, "the kill")  # noqa: B023
        result = block(restart(pid), timeout=120)
        assert result["metrics"]["Delivered messages"] == DEVICES * limit, (k, status(pid))
        assert result["states"] == reference, k
        assert status(pid)["run"] == 2
