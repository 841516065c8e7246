"""Processes on a real fleet: Celery workers (prefork, as deployed) on a real Redis.

pstack's results through run() in 1-4 regions, gang scheduling (waiting, many submitters,
refusal), kill, failures ending the whole process, quiescence, verbose streaming, pinning.
"""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from pstack_tasks.exceptions import GraphError, ProcessFailed, ProcessNotFound, ProcessRefused
from pstack_tasks.fleet.client import Future, block, engines, kill, ps, run, status, submit
from support.apps import crashing_app, split, token_ring, variant
from support.expected import DEVICES, EXPECTED, check
from support.faults import wait_for
from support.fleet import WorkerFleet
from support.paths import PSTACK

RING = "ring-oscillator-01.xml"
FOREVER = ("bool finished = deviceState->counter >= 10;", "bool finished = false;")


@pytest.mark.parametrize("regions", [1, 2, 3, 4])
@pytest.mark.parametrize("app", sorted(EXPECTED))
def test_pstack_tests_through_run(app: str, regions: int, on_fleet: WorkerFleet) -> None:
    if regions > len(DEVICES[app]):
        regions = len(DEVICES[app])
    result = run(PSTACK / app, rmap=split(DEVICES[app], regions), timeout=60)
    check(result, app)
    per_region = result["regions"]
    assert len(per_region) == regions
    assert sum(m["Delivered messages"] for m in per_region.values()) == EXPECTED[app][0]
    rec = status(result["pid"])
    assert rec["state"] == "Done" and rec["user"] and rec["devices"] == len(DEVICES[app])
    assert set(rec["hosts"].values()) <= {"alpha", "beta"}


def test_two_three_region_processes_on_four_slots_both_finish(on_fleet: WorkerFleet) -> None:
    rmap = {"n1": 1, "n2": 2}
    first = run(PSTACK / RING, rmap=rmap, engine="dummy", options={"seconds": 1.0}, async_=True)
    second = run(PSTACK / RING, rmap=rmap, engine="dummy", options={"seconds": 0.2}, async_=True)
    assert second.state() == "Waiting"  # 3 of the 4 dummy slots are taken
    block([first, second], timeout=30)
    a, b = status(first.pid), status(second.pid)
    assert a["state"] == b["state"] == "Done"
    assert b["started"] >= a["started"] + 1.0  # it started only when the first's regions gave their slots back


def test_twenty_submitters_at_once_on_four_slots_all_finish(on_fleet: WorkerFleet) -> None:
    futures, errors = [], []
    peak = [0]

    def submit() -> None:
        try:
            futures.append(run(PSTACK / "ring-oscillator-01.xml", rmap={"n1": 1, "n2": 2}, engine="dummy",
                               options={"seconds": 0.1}, async_=True))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=submit) for _ in range(20)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads) or not all(f.done() for f in futures):
        busy = sum(w["busy"] for w in engines() if w["engine"] == "dummy")
        peak[0] = max(peak[0], busy)
        time.sleep(0.02)
    assert not errors
    results = block(futures, timeout=60)
    assert len(results) == 20 and all(len(r["regions"]) == 3 for r in results)
    assert peak[0] <= 4


def test_a_process_larger_than_the_fleet_is_refused_with_the_numbers(tmp_path: Path, on_fleet: WorkerFleet) -> None:
    app = tmp_path / "five.xml"
    app.write_text(token_ring(5, 3))
    with pytest.raises(ProcessRefused, match="needs 5 psim slots at once; the psim fleet has 4"):
        run(app, rmap={f"n{i}": i for i in range(5)}, timeout=10)
    assert ps()[0]["state"] == "Failed" and "refused" in ps()[0]["reason"]


def test_pinned_regions_run_where_asked_and_unknown_hosts_are_refused(on_fleet: WorkerFleet) -> None:
    result = run(PSTACK / RING, rmap={"n1": 1, "n2": 1}, rcon={1: "beta", 0: "beta"}, timeout=30)
    assert result["hosts"] == {"0": "beta", "1": "beta"}
    with pytest.raises(ProcessRefused, match="pinned to gamma, but no psim engine named gamma is online"):
        run(PSTACK / RING, rmap={"n1": 1}, rcon={1: "gamma"}, timeout=10)


def test_kill_stops_every_engine_at_once(tmp_path: Path, on_fleet: WorkerFleet) -> None:
    app = variant(RING, *FOREVER, tmp_path)
    f = run(app, rmap={"n1": 1, "n2": 2}, async_=True)
    wait_for(lambda: len(_engines(on_fleet)) >= 3, 20, "three engines running")
    t0 = time.monotonic()
    assert kill(f.pid) == "Killed"
    wait_for(lambda: not on_fleet.leftovers(), 2 - (time.monotonic() - t0), "engines gone after kill")
    rec = status(f.pid)
    assert rec["state"] == "Killed" and rec["reason"].startswith("killed by ")
    with pytest.raises(ProcessFailed, match="killed by"):
        block(f, timeout=5)


def test_a_segfault_in_one_region_fails_the_process_and_stops_the_others(tmp_path: Path,
                                                                         on_fleet: WorkerFleet) -> None:
    slow = crashing_app(tmp_path)
    with pytest.raises(ProcessFailed) as e:
        run(slow, rmap={"device1": 1}, timeout=30)
    assert e.value.state == "Failed"
    assert e.value.reason.startswith("region 1 on ")
    assert "device 'device1' crashed: segmentation fault" in e.value.reason


def test_a_compile_error_fails_the_process_naming_the_handler(tmp_path: Path, on_fleet: WorkerFleet) -> None:
    app = variant(RING, "bool finished = deviceState->counter >= 10;", "bool finished = nonsense;", tmp_path,
                  out="broken.xml")
    with pytest.raises(ProcessFailed, match="nonsense") as e:
        run(app, rmap={"n1": 1}, timeout=60)
    assert "toggle_in" in e.value.reason


def test_a_bad_file_fails_before_anything_is_queued(tmp_path: Path, on_fleet: WorkerFleet) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text("<Graphs><oops></Graphs>")
    before = len(ps())
    with pytest.raises(GraphError, match="bad.xml:1"):
        run(bad)
    assert len(ps()) == before


def test_a_split_ring_without_handler_exit_ends_by_itself(tmp_path: Path, on_fleet: WorkerFleet) -> None:
    from pstack_tasks import psim
    app = variant(RING, "handler_exit(0);", "", tmp_path)
    alone = psim(app, options={"quiet": True})
    assert alone["metrics"]["Exit reason"] == "quiescence"
    result = run(app, rmap={"n1": 1, "n2": 2}, timeout=60)
    assert result["metrics"]["Exit reason"] == "quiescence"
    assert result["metrics"]["Delivered messages"] == alone["metrics"]["Delivered messages"] > 0
    assert result["states"] == alone["states"]


def test_verbose_streams_host_and_region_lines(on_fleet: WorkerFleet) -> None:
    lines: list[str] = []
    f = run(PSTACK / RING, rmap={"n1": 1}, verbose=True, async_=True)
    block(f, timeout=30, sink=lines.append)
    host = status(f.pid)["hosts"]["1"]
    assert f"[{host}] Region 1 -> Log [device n1, level 1]: counter = 10" in lines
    assert sum(1 for line in lines if "Log [device" in line) == 40


def test_a_region_task_of_an_ended_process_exits_at_once(on_fleet: WorkerFleet) -> None:
    from pstack_tasks.worker.tasks import region
    result = run(PSTACK / RING, rmap={"n1": 1}, timeout=30)
    late = region.apply_async((result["pid"], 1), queue="engine.psim.alpha")
    wait_for(late.ready, 10, "the late region task to end")
    assert late.result == {"region": 1, "stale": True}
    assert status(result["pid"])["state"] == "Done"


def test_submit_returns_a_future_and_run_async_still_does(on_fleet: WorkerFleet) -> None:
    f = submit(PSTACK / RING, rmap={"n1": 1})
    g = run(PSTACK / RING, rmap={"n1": 1}, async_=True)
    assert isinstance(f, Future) and isinstance(g, Future) and g.pid > f.pid
    assert f.result(timeout=30)["metrics"]["Delivered messages"] == 40
    assert block(g, timeout=30)["states"] == run(PSTACK / RING, rmap={"n1": 1}, timeout=30)["states"]


def test_an_unknown_pid_is_not_found_by_status_kill_and_block(on_fleet: WorkerFleet) -> None:
    for call in (lambda: status(987654), lambda: kill(987654), lambda: block(987654, timeout=1)):
        with pytest.raises(ProcessNotFound, match="no process 987654"):
            call()


def test_region_states_cross_redis_once_stored_by_each_region(on_fleet: WorkerFleet) -> None:
    from pstack_tasks.fleet import store
    from pstack_tasks.fleet.keys import Keys
    result = run(PSTACK / RING, rmap={"n1": 1, "n2": 2}, timeout=30)
    r, keys = store.client(), Keys.current()
    parts = r.hgetall(keys.result(result["pid"]))
    assert sorted(parts) == ["0", "1", "2"]
    stored = {n for text in parts.values() for n in json.loads(text)["states"]}
    assert stored == set(result["states"]) == {"n0", "n1", "n2", "n3"}
    # and none of it went through Celery's result backend: region tasks return their metrics only
    metas = [r.get(k) or "" for k in r.scan_iter(f"{keys.prefix}celery-task-meta-*")]
    regions = [meta for meta in map(json.loads, metas)
               if meta.get("name") == "pstack.region" and meta["status"] == "SUCCESS"]
    assert regions and all(set(m["result"]) <= {"region", "host", "metrics", "stale", "stopped"} for m in regions)


def test_the_last_region_to_end_ends_the_process_done_without_a_chord(on_fleet: WorkerFleet) -> None:
    from pstack_tasks.fleet import store
    from pstack_tasks.fleet.keys import Keys
    result = run(PSTACK / RING, rmap={"n1": 1, "n2": 2}, timeout=30)
    pid, metrics = result["pid"], result["metrics"]
    r, keys = store.client(), Keys.current()
    # the reason comes from every region's exit code and reason, as the readers merge them
    assert status(pid)["reason"] == f"exit code {metrics['Exit code']} ({metrics['Exit reason']})"
    exits = {int(x): json.loads(t) for x, t in r.hgetall(keys.exits(pid)).items()}
    assert sorted(exits) == [0, 1, 2] and 0 < r.ttl(keys.exits(pid))
    assert {e["Exit reason"] for e in exits.values()} == {m["Exit reason"] for m in result["regions"].values()}
    # and Celery ran the region tasks only: no chord callback for this process
    metas = [json.loads(r.get(k) or "{}") for k in r.scan_iter(f"{keys.prefix}celery-task-meta-*")]
    ours = [m for m in metas if (m.get("args") or [None])[0] == pid]
    assert sorted(m["name"] for m in ours) == ["pstack.region"] * 3


def _engines(fleet: WorkerFleet) -> list[str]:
    return [x for x in fleet.leftovers() if "pstack-celery/engines/" in x]


def test_live_progress_while_running_and_exact_at_the_end(tmp_path: Path, on_fleet: WorkerFleet) -> None:
    app = tmp_path / "tokens.xml"
    app.write_text(token_ring(100, 10000))  # every hop crosses regions: 1 M messages take seconds
    seen: list[dict] = []
    f = run(app, rmap={f"n{i}": i % 2 for i in range(100)}, async_=True)

    def moving() -> bool:
        s = status(f.pid)
        if s["state"] == "Running" and s["delivered"] > 0:
            seen.append(s)
        return len(seen) >= 2 and seen[-1]["delivered"] > seen[0]["delivered"]
    wait_for(moving, 30, "delivered to grow while the process runs")
    row = next(p for p in ps() if p["pid"] == f.pid)
    assert row["delivered"] >= seen[0]["delivered"] and set(row["progress"]) <= {0, 1}
    result = block(f, timeout=60)
    final = status(f.pid)
    assert final["delivered"] == result["metrics"]["Delivered messages"] == 1_000_000
    assert {r: p["delivered"] for r, p in final["progress"].items()} == {
        int(r): m["Delivered messages"] for r, m in result["regions"].items()}
