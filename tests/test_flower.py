"""Flower against the real test fleet: readable region names, live progress, processes started
and read through its HTTP API, and authentication (docs/flower.md).

One real ``celery flower`` process for the module, on the fleet's Redis and key prefix, with
basic authentication; every request goes through its HTTP API as an operator's curl would.
"""
from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from celery.result import AsyncResult

from pstack_tasks.fleet.client import block, kill, run, status
from support.apps import variant
from support.fleet import WorkerFleet, fleet_env
from support.paths import PSTACK

ROOT = Path(__file__).resolve().parent.parent
RING = PSTACK / "ring-oscillator-01.xml"  # graph type "ro"
USER, PASSWORD = "ops", "s3cret-pw"
PROGRESS_TEXT = re.compile(r"^delivered (\d+) messages, step (\d+)$")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FlowerClient:
    """Flower's HTTP API, as curl with ``-u user:password`` would use it."""

    def __init__(self, base: str, user: str | None = USER, password: str | None = PASSWORD) -> None:
        self.base = base
        self.auth = None if user is None else base64.b64encode(f"{user}:{password}".encode()).decode()

    def request(self, method: str, path: str, body: Any = None, timeout: float = 30) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.auth:
            req.add_header("Authorization", f"Basic {self.auth}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                text = resp.read().decode()
                if resp.headers.get_content_type() == "application/json":
                    return resp.status, json.loads(text)
                return resp.status, text
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")

    def get(self, path: str, timeout: float = 30) -> Any:
        code, body = self.request("GET", path, timeout=timeout)
        assert code == 200, f"GET {path}: {code} {body}"
        return body

    def post(self, path: str, body: Any) -> Any:
        code, reply = self.request("POST", path, body)
        assert code == 200, f"POST {path}: {code} {reply}"
        return reply

    def apply(self, task: str, *args: Any, **kwargs: Any) -> str:
        """Send a task through Flower; its task id."""
        return str(self.post(f"/api/task/async-apply/{task}", {"args": list(args), "kwargs": kwargs})["task-id"])

    def result(self, task_id: str, timeout: float = 20) -> dict[str, Any]:
        """A task's final state and result, waited for inside Flower.

        Flower 2.2 reads ``state`` *before* it waits, so the waiting reply can say STARTED next
        to the final result; the second read (no wait) has the final state.
        """
        self.get(f"/api/task/result/{task_id}?timeout={timeout:g}", timeout=timeout + 10)
        reply: dict[str, Any] = self.get(f"/api/task/result/{task_id}")
        return reply


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


@pytest.fixture(scope="module")
def flower(fleet: WorkerFleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlowerClient]:
    """A real Flower on the fleet's broker, answering and receiving the fleet's events."""
    port = free_port()
    log = tmp_path_factory.mktemp("flower") / "flower.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWER_")}
    # the credentials as docs/flower.md passes them: in the environment, not on the command line
    env.update(PSTACK_REDIS_URL=fleet.url, PSTACK_KEY_PREFIX=fleet.prefix, FLOWER_BASIC_AUTH=f"{USER}:{PASSWORD}")
    cmd = [sys.executable, "-m", "celery", "-A", "pstack_tasks.celery_app", "flower", "--address=127.0.0.1",
           f"--port={port}", "--loglevel=warning"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    client = FlowerClient(f"http://127.0.0.1:{port}")
    # Point this client at the session fleet again: a test with a fleet of its own leaves the
    # Celery app pointed at that one (use_stack restores only the environment).
    stack = fleet_env(fleet)
    stack.__enter__()
    try:
        def answering() -> bool:
            assert proc.poll() is None, f"flower exited with {proc.returncode}: {log.read_text()[-2000:]}"
            return client.request("GET", "/healthcheck", timeout=1)[0] == 200 if _port_open(port) else False
        wait_for(answering, 20, "Flower's HTTP port")
        # Its event receiver is connected once it has seen a task run.  A task that ran before the
        # receiver subscribed is never seen, so send another until one is (a loaded machine).
        def sees_a_task() -> bool:
            task_id = client.apply("pstack.noop")
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                if client.request("GET", f"/api/task/info/{task_id}")[0] == 200:
                    return True
                time.sleep(0.1)
            return False
        wait_for(sees_a_task, 45, "Flower to see a task's events")
        yield client
    finally:
        stack.__exit__(None, None, None)
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.3):
            return True
    except OSError:
        return False


def region_tasks(flower: FlowerClient, name: str) -> dict[str, Any]:
    """Flower's tasks of that (readable) name."""
    tasks: dict[str, Any] = flower.get(f"/api/tasks?taskname={urllib.request.quote(name)}")
    return tasks


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
    assert task["args"] == f"(pid={f.pid}, region=1/2, graph=ro)"
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
