"""v4 supervisors in snapshots and checkpoints (docs/persistence.md, "Supervisors"): the supervisor's
state travels in its region's dump, so a supervised ring checkpointed on 2 regions restarts on 1, and
one checkpointed on 1 restarts on 2, each with the uninterrupted result (the broadcasts' count hangs
on the supervisor's state); a supervisor whose state is not plain data is snapshot but not checkpointed."""
from __future__ import annotations

from pathlib import Path

import pytest

from pstack_tasks.exceptions import ProcessError
from pstack_tasks.fleet.client import block, kill, run, status
from pstack_tasks.fleet.persistence.api import restart
from pstack_tasks.fleet.persistence.checkpoints import checkpoint
from pstack_tasks.fleet.persistence.snapshots import snapshot
from pstack_tasks.native.simulate import psim
from support.apps import supervised_ring
from support.faults import wait_for
from support.fleet import WorkerFleet

DEVICES = 30
NAMES = [f"n{i}" for i in range(DEVICES)]
HALVES = {n: 0 if i < DEVICES // 2 else 1 for i, n in enumerate(NAMES)}


#: a few hundred nanoseconds per message, so that one region runs for seconds
SLOW = "for (volatile int k = 0; k < 600; ++k) {}"


def _app(tmp_path: Path, limit: int, every: int, state: str = "uint64_t seen;",
         slow: str = "") -> tuple[Path, dict[str, object]]:
    app = tmp_path / "supervised.xml"
    text = supervised_ring(DEVICES, limit, every, on_receive_extra=slow).replace("uint64_t seen;", state)
    app.write_text(text.replace("<State><![CDATA[ uint64_t", "<Code><![CDATA[\n#include <vector>\n]]></Code>\n"
                                "<State><![CDATA[ uint64_t"))
    return app, psim(str(app), options={"quiet": True})


@pytest.mark.parametrize(("before", "after"), [(HALVES, {}), ({}, HALVES)], ids=["2-to-1", "1-to-2"])
def test_a_supervised_ring_restarts_on_another_region_map_with_the_uninterrupted_result(
        tmp_path: Path, on_fleet: WorkerFleet, before: dict[str, int], after: dict[str, int]) -> None:
    limit, every, slow = (40_000, 100, "") if before else (300_000, 1_000, SLOW)  # a split's reports wait
    app, reference = _app(tmp_path, limit, every, slow=slow)
    assert reference["metrics"]["Supervisor receives"] == DEVICES * limit // every
    f = run(app, rmap=before, async_=True)
    wait_for(lambda: status(f.pid)["delivered"] > 0, 60, "the ring running")
    snap = snapshot(f.pid)
    assert 0 < snap["metrics"]["Delivered messages"] < reference["metrics"]["Delivered messages"]
    taken = checkpoint(f.pid)
    kill(f.pid)
    assert 0 < taken["delivered"] < reference["metrics"]["Delivered messages"], "the run ended first: make it longer"
    result = block(restart(f.pid, rmap=after), timeout=180)
    assert len(result["regions"]) == (2 if after else 1)
    assert result["states"] == reference["states"]
    for metric in ("Delivered messages", "Supervisor receives", "Supervisor sends"):
        assert result["metrics"][metric] == reference["metrics"][metric], metric


def test_a_supervisor_whose_state_is_not_plain_data_is_snapshot_but_not_checkpointed(
        tmp_path: Path, on_fleet: WorkerFleet) -> None:
    app, _ = _app(tmp_path, 300_000, 1_000, "uint64_t seen; std::vector<uint32_t> log;", SLOW)
    f = run(app, async_=True)
    wait_for(lambda: status(f.pid)["delivered"] > 0, 60, "the ring running")
    assert len(snapshot(f.pid)["states"]) == DEVICES
    with pytest.raises(ProcessError) as refused:
        checkpoint(f.pid)
    assert str(refused.value) == (f"process {f.pid}: the state of graph type 'supervised_ring''s supervisor is "
                                  "not plain data (a std::vector, a pointer, ...): it cannot be checkpointed "
                                  "(a snapshot can)")
    kill(f.pid)
