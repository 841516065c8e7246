"""Runs (generations) of a process on real workers (docs/persistence.md, "Runs"): every admission
is a new run, its region tasks carry it, and a region task or a region's end of another run
touches nothing of the process.  Without them, a region task still queued from a run before a
restart joined the new run as one of its regions, and an old region's end counted as the new
run's (ending it Done without that region's part)."""
from __future__ import annotations

import json
from pathlib import Path

from pstack_tasks.celery_app import app
from pstack_tasks.fleet import store
from pstack_tasks.fleet.client import block, run, status
from pstack_tasks.fleet.keys import Keys, host_queue
from pstack_tasks.fleet.ledger import Ledger, RegionEnded, WorkerEnd
from pstack_tasks.native.simulate import psim
from support.apps import token_ring
from support.faults import wait_for
from support.fleet import WorkerFleet

DEVICES = 20
#: a few hundred nanoseconds per message, so that the ring runs for a few seconds
SLOW = "for (int k = 0; k < 150; ++k) deviceState->sum += 1e-12 * k;"
HALVES = {f"n{i}": 0 if i < DEVICES // 2 else 1 for i in range(DEVICES)}


def _ring(tmp_path: Path, limit: int) -> tuple[Path, dict[str, dict[str, object]]]:
    path = tmp_path / "ring.xml"
    path.write_text(token_ring(DEVICES, limit, on_receive_extra=SLOW))
    return path, psim(str(path), options={"quiet": True})["states"]


def test_every_admission_is_a_new_run_and_its_tasks_carry_it(tmp_path: Path, on_fleet: WorkerFleet) -> None:
    path, reference = _ring(tmp_path, 200)
    result = run(path, rmap=HALVES, timeout=60)
    assert result["states"] == reference
    r, keys = store.client(), Keys.current()
    assert r.hget(keys.proc(result["pid"]), "run") == "1"

    def tasks() -> list[list[object]]:  # stored as each task returns, after its region's end
        metas = [json.loads(r.get(k) or "{}") for k in r.scan_iter(f"{keys.prefix}celery-task-meta-*")]
        return sorted(m["args"] for m in metas if m.get("name") == "pstack.region" and m["args"][0] == result["pid"])
    wait_for(lambda: len(tasks()) == 2, 30, "both region tasks' results")
    assert tasks() == [[result["pid"], 0, 1, "psim"], [result["pid"], 1, 1, "psim"]]


def test_a_region_task_of_another_run_does_not_take_part(tmp_path: Path, on_fleet: WorkerFleet) -> None:
    # One region pinned to alpha (2 slots): alpha's other pool process is free for the stale task.
    path, reference = _ring(tmp_path, 300_000)
    f = run(path, rcon={"0": "alpha"}, async_=True)
    wait_for(lambda: status(f.pid)["delivered"] > 0, 60, "the ring running")
    r, keys = store.client(), Keys.current()
    beat_before = r.pttl(keys.beat(f.pid, 0))
    assert r.hget(keys.proc(f.pid), "run") == "1" and beat_before > 0
    # what a task of the run before a restart looks like, still queued when the new run started
    stale = app.send_task("pstack.region", (f.pid, 0, 0, "psim"), queue=host_queue("psim", "alpha"))
    assert stale.get(timeout=60, disable_sync_subtasks=False) == {"region": 0, "stale": True}
    assert status(f.pid)["state"] == "Running"
    assert r.smembers(keys.started(f.pid)) == {"0"} and r.exists(keys.beat(f.pid, 0))
    done = block(f, timeout=120)
    assert done["states"] == reference  # one engine ran region 0, not two


def test_a_region_end_of_another_run_changes_nothing(tmp_path: Path, on_fleet: WorkerFleet) -> None:
    path, reference = _ring(tmp_path, 300_000)
    f = run(path, rmap=HALVES, async_=True)
    wait_for(lambda: status(f.pid)["delivered"] > 0, 60, "the ring running")
    r, keys = store.client(), Keys.current()
    ledger = Ledger.of(r, keys)

    def dump() -> list[object]:
        return [r.hgetall(keys.lease(f.pid)), r.smembers(keys.started(f.pid)), r.smembers(keys.ended(f.pid)),
                r.hgetall(keys.exits(f.pid)), r.hgetall(keys.result(f.pid)), r.exists(keys.beat(f.pid, 0)),
                r.hget(keys.proc(f.pid), "state"), r.hgetall(keys.used("psim"))]
    before = dump()
    view = ledger.view("psim")
    said = WorkerEnd("5 5", json.dumps({"Exit code": 0, "Exit reason": "quiescence"}), [0, 1], False)
    reply = ledger.transaction(lambda pipe: ledger.region_end(pipe, view, f.pid, 0, [0, 1], '{"states": {}}', 0,
                                                              said))[0]
    assert RegionEnded.of(reply).stale
    assert dump() == before  # nothing of the running process touched, its slot not given back
    done = block(f, timeout=120)
    assert done["states"] == reference
    assert r.hget(keys.proc(f.pid), "run") == "1"
