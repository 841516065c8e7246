"""Flower against the real test fleet: readable region names, live progress, processes started
and read through its HTTP API, and authentication (docs/flower.md).

One real ``celery flower`` process for the module, on the fleet's Redis and key prefix, with
basic authentication; every request goes through its HTTP API as an operator's curl would.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery.result import AsyncResult

from pstack_tasks.fleet.client import block, kill, run, status
from support.apps import variant
from support.fleet import WorkerFleet, fleet_env
from support.flower import USER, FlowerClient, region_tasks, running_flower, wait_for
from support.paths import PSTACK

RING = PSTACK / "ring-oscillator-01.xml"  # graph type "ro"
PROGRESS_TEXT = re.compile(r"^delivered (\d+) messages, step (\d+)$")


@pytest.fixture(scope="module")
def flower(fleet: WorkerFleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlowerClient]:
    """A real Flower on the fleet's broker, answering and receiving the fleet's events."""
    # Point this client at the session fleet again: a test with a fleet of its own leaves the
    # Celery app pointed at that one (use_stack restores only the environment).
    with running_flower(fleet, tmp_path_factory.mktemp("flower") / "flower.log") as client, fleet_env(fleet):
        yield client


def test_region_tasks_show_readable_names_and_live_progress(flower: FlowerClient, on_fleet: WorkerFleet) -> None:
    # Given a two-region dummy process that runs for three seconds
    f = run(RING, rmap={"n1": 1}, engine="dummy", options={"seconds": 3.0}, async_=True)
    name = f"ro:{f.pid}/r1"

    # Then while it runs Flower lists region 1 under its readable name, in state PROGRESS
    def progressing() -> Any:
        for task_id, task in region_tasks(flower, name).items():
            if task["state"] == "PROGRESS":
                return task_id, task
        return None
    try:
        task_id, task = wait_for(progressing, 10, f"{name} in state PROGRESS")
    except AssertionError:
        raise AssertionError(f"{name} not in PROGRESS: {status(f.pid)}; Flower has "
                             f"{[(t['name'], t['state'], t.get('result')) for t in flower.get('/api/tasks').values()]}"
                             ) from None
    assert task["name"] == name
    assert task["args"] == f"(pid={f.pid}, region=1/2, run=1, graph=ro)"
    assert task["worker"] == "dummy@delta"
    first = PROGRESS_TEXT.match(task["result"])
    assert first, task["result"]

    # and the counters grow on the task's own page (the info API) while it runs
    def grown() -> Any:
        info = flower.get(f"/api/task/info/{task_id}")
        m = PROGRESS_TEXT.match(info.get("result") or "")
        return info if info["state"] == "PROGRESS" and m and int(m.group(1)) > int(first.group(1)) else None
    info = wait_for(grown, 5, "the delivered count to grow")
    assert info["name"] == name and status(f.pid)["state"] == "Running"

    # and the result backend has the counters for Celery clients (Flower's result API: the state only)
    assert flower.get(f"/api/task/result/{task_id}") == {"task-id": task_id, "state": "PROGRESS"}
    meta = AsyncResult(task_id).info
    assert meta["pid"] == f.pid and meta["region"] == 1 and meta["delivered"] >= int(first.group(1))

    # When it ends, the task succeeds under the same name; no chord callback task: the last
    # region to end ended the process itself
    result = block(f, timeout=20)
    final = wait_for(lambda: (lambda i: i if i["state"] == "SUCCESS" else None)(
        flower.get(f"/api/task/info/{task_id}")), 5, "SUCCESS")
    assert final["name"] == name
    assert AsyncResult(task_id).state == "SUCCESS"  # no late progress report overwrote the end
    assert str(result["regions"]["1"]["Delivered messages"]) in final["result"]
    assert region_tasks(flower, f"ro:{f.pid}/merge") == {}


def test_a_psim_region_shows_its_engines_counters_and_a_kill_shows_as_failure(
        flower: FlowerClient, on_fleet: WorkerFleet, tmp_path: Path) -> None:
    # Given a split ring oscillator that never finishes, on the psim engine
    app = variant(RING.name, "bool finished = deviceState->counter >= 10;", "bool finished = false;", tmp_path)
    f = run(app, rmap={"n1": 1, "n2": 1}, async_=True)
    name = f"ro:{f.pid}/r1"
    try:
        # Then Flower shows the engine's own counters for region 1, and they grow
        def delivered() -> int:
            for task in region_tasks(flower, name).values():
                m = PROGRESS_TEXT.match(task.get("result") or "") if task["state"] == "PROGRESS" else None
                if m:
                    return int(m.group(1))
            return 0
        first = wait_for(delivered, 20, f"{name} in state PROGRESS")
        wait_for(lambda: delivered() > first, 5, "the psim counters to grow")
    finally:
        # When it is killed, its regions end in Flower naming who killed it (a kill is no task
        # failure: no ERROR in the worker's log, docs/processes.md)
        assert kill(f.pid) == "Killed"
    stopped = wait_for(lambda: [t for t in region_tasks(flower, name).values() if t["state"] == "SUCCESS"], 5,
                       f"{name} to end")
    assert "killed by" in stopped[0]["result"]


def test_a_process_started_through_flowers_api_completes_and_its_result_is_read_there(
        flower: FlowerClient, on_fleet: WorkerFleet) -> None:
    # When an operator submits the application's text through Flower
    text = RING.read_text()
    submit_id = flower.apply("pstack.submit", text, rmap={"n1": 1, "n2": 2}, engine="dummy",
                             options={"seconds": 0.5})
    submitted = flower.result(submit_id)
    assert submitted["state"] == "SUCCESS", submitted
    # (Flower lists the submit task with a short stand-in for the XML text, not the text itself)
    shown = wait_for(lambda: flower.get(f"/api/task/info/{submit_id}"), 5, "the submit task in Flower")
    assert shown["args"] == f"(<XML text, {len(text)} characters, graph type ro>)"
    pid = submitted["result"]["pid"]
    assert submitted["result"]["state"] in ("Waiting", "Running")

    # Then asking for its result, waiting up to 20 s, answers once it is Done
    answer = flower.result(flower.apply("pstack.result", pid, wait=20), timeout=25)
    assert answer["state"] == "SUCCESS", answer
    record = answer["result"]
    assert record["pid"] == pid and record["state"] == "Done" and record["graph_type"] == "ro"
    assert sorted(record["result"]["regions"]) == ["0", "1", "2"]
    assert record["result"]["metrics"]["Exit code"] == 0
    assert status(pid)["state"] == "Done"

    # and without waiting, it answers at once with the same record
    again = flower.result(flower.apply("pstack.result", pid))
    assert again["result"]["state"] == "Done" and again["result"]["result"] == record["result"]


def test_a_path_on_the_workers_host_is_accepted_and_a_bad_application_fails_with_its_reason(
        flower: FlowerClient, on_fleet: WorkerFleet, tmp_path: Path) -> None:
    by_path = flower.result(flower.apply("pstack.submit", str(RING), rmap={"n1": 1}, engine="dummy",
                                         options={"seconds": 0.2}))
    assert by_path["state"] == "SUCCESS", by_path
    block(by_path["result"]["pid"], timeout=20)

    # (a process of a worker group: docs/fleet.md, "Worker groups")
    grouped = flower.result(flower.apply("pstack.submit", str(RING), engine="dummy", options={"seconds": 0.1},
                                         group="lab"))
    assert grouped["state"] == "SUCCESS", grouped
    block(grouped["result"]["pid"], timeout=20)
    assert status(grouped["result"]["pid"])["group"] == "lab"

    # (the application may also be a keyword argument; Flower shows its stand-in there too)
    reply = flower.post("/api/task/async-apply/pstack.submit",
                        {"kwargs": {"application": RING.read_text(), "engine": "dummy", "options": {"seconds": 0.2}}})
    by_kwarg = flower.result(reply["task-id"])
    assert by_kwarg["state"] == "SUCCESS", by_kwarg
    block(by_kwarg["result"]["pid"], timeout=20)
    shown = wait_for(lambda: flower.get(f"/api/task/info/{reply['task-id']}"), 5, "the submit task in Flower")
    assert "'application': '<XML text, " in shown["kwargs"] and "GraphType" not in shown["kwargs"]

    broken = tmp_path / "broken.xml"
    broken.write_text(RING.read_text().replace("</Graphs>", ""))
    failed = flower.result(flower.apply("pstack.submit", str(broken), engine="dummy"))
    assert failed["state"] == "FAILURE"
    assert "broken.xml" in json.dumps(failed["result"])

    unknown = flower.result(flower.apply("pstack.result", 987654))
    assert unknown["state"] == "FAILURE" and "no process 987654" in json.dumps(unknown["result"])


def test_flowers_api_refuses_requests_without_the_credentials(flower: FlowerClient) -> None:
    base = flower.base
    assert FlowerClient(base, None).request("GET", "/api/workers")[0] == 401
    assert FlowerClient(base, USER, "wrong").request("GET", "/api/tasks")[0] == 401
    code, _ = FlowerClient(base, None).request("POST", "/api/task/async-apply/pstack.submit", {"args": ["x"]})
    assert code == 401
    assert flower.request("GET", "/api/tasks?limit=1")[0] == 200


def test_the_submit_task_is_shown_by_a_short_stand_in_for_its_application() -> None:
    from pstack_tasks.worker.flower_tasks import describe_application
    text = RING.read_text()
    assert describe_application(text) == f"<XML text, {len(text)} characters, graph type ro>"
    assert describe_application("  <Graphs/>") == "<XML text, 11 characters, no GraphType found>"
    assert describe_application("/shared/apps/ring.xml") == "'/shared/apps/ring.xml'"
