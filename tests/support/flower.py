"""Flower for tests: a real ``celery flower`` on a fleet's Redis and key prefix, with basic
authentication, and its HTTP API as an operator's curl would use it (docs/flower.md)."""
from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from support.fleet import WorkerFleet

ROOT = Path(__file__).resolve().parent.parent.parent
USER, PASSWORD = "ops", "s3cret-pw"


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


@contextmanager
def running_flower(fleet: WorkerFleet, log: Path) -> Iterator[FlowerClient]:
    """A real Flower on the fleet's broker, answering and receiving the fleet's events; its
    output goes to ``log``.  Stopped on leaving."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWER_")}
    # the credentials as docs/flower.md passes them: in the environment, not on the command line
    env.update(PSTACK_REDIS_URL=fleet.url, PSTACK_KEY_PREFIX=fleet.prefix, FLOWER_BASIC_AUTH=f"{USER}:{PASSWORD}")
    cmd = [sys.executable, "-m", "celery", "-A", "pstack_tasks.celery_app", "flower", "--address=127.0.0.1",
           f"--port={port}", "--loglevel=warning"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    client = FlowerClient(f"http://127.0.0.1:{port}")
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
