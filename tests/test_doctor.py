"""``pstack doctor`` on real fleets: a healthy one passes every row; a fleet without a control
worker, with a worker that finds no compiler on its PATH, or on a Redis without persistence fails
that row and names the fix."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pstack_tasks.fleet.keys import CONTROL_QUEUE
from pstack_tasks.native.redis_server import EmbeddedRedis
from support.fleet import WorkerFleet, fleet_env

PSTACK_CMD = [sys.executable, "-m", "pstack_tasks.ui.cli.pstack"]
PASSWORD = "doctor-s3cret"

pytestmark = pytest.mark.fleet  # the fleets here run on a private password-protected redis-server


def doctor(url: str, prefix: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PSTACK_")}
    env.update(PSTACK_REDIS_URL=url, PSTACK_KEY_PREFIX=prefix)
    return subprocess.run([*PSTACK_CMD, "doctor", *args], capture_output=True, text=True, env=env, timeout=timeout)


def rows(p: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    report = json.loads(p.stdout)
    return {c["name"]: c for c in report["checks"]}


@pytest.fixture(scope="module")
def secured_redis() -> Iterator[str]:
    """A private redis-server as docs/fleet.md deploys one: a password, AOF, noeviction."""
    with EmbeddedRedis(password=PASSWORD) as server:
        import redis
        admin = redis.Redis.from_url(server.url)
        admin.config_set("appendonly", "yes")
        admin.config_set("maxmemory-policy", "noeviction")
        admin.close()
        yield server.url


@pytest.fixture(scope="module")
def healthy(secured_redis: str) -> Iterator[WorkerFleet]:
    f = WorkerFleet(secured_redis, [("psim", "alpha", 2)])
    try:
        yield f
    finally:
        f.close()


@pytest.fixture(scope="module")
def broken(secured_redis: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerFleet]:
    """No worker consuming the control queue, and a psim worker whose PATH has socat but no g++: what it registers is
    what it found on its own PATH.  Same Redis as the healthy fleet: its own key prefix keeps
    Celery's remote control (which the control check asks) apart from the healthy fleet's."""
    bin_dir = tmp_path_factory.mktemp("bin-without-gxx")
    socat = shutil.which("socat")
    assert socat is not None
    (bin_dir / "socat").symlink_to(socat)
    f = WorkerFleet(secured_redis, [], control=False)
    f.fleet.env["PATH"] = str(bin_dir)
    f.fleet.start("psim", "nocc", 1)
    f.fleet.wait_registered([("psim", "nocc")])
    # Every worker takes the control queue (docs/fleet.md); an operator can still take it away,
    # which is what leaves a fleet without a control path.
    from pstack_tasks.celery_app import app
    with fleet_env(f):
        replies = app.control.cancel_consumer(CONTROL_QUEUE, destination=["psim@nocc"], reply=True, timeout=5)
    assert replies, "the worker did not answer the remote-control call"
    try:
        yield f
    finally:
        f.close()


def test_a_healthy_fleet_passes_every_row(healthy: WorkerFleet) -> None:
    p = doctor(healthy.url, healthy.prefix, "--json")
    assert p.returncode == 0, p.stdout + p.stderr
    checks = rows(p)
    assert {name: c["status"] for name, c in checks.items()} == {
        "redis": "OK", "persistence": "OK", "eviction": "OK", "clock": "OK", "engines psim": "OK",
        "control": "OK", "tools psim@alpha": "OK", "test process": "OK"}
    assert checks["test process"]["detail"].endswith("40 delivered")
    assert PASSWORD not in p.stdout + p.stderr


def test_the_table_has_a_row_per_check_and_a_count(healthy: WorkerFleet) -> None:
    p = doctor(healthy.url, healthy.prefix)
    assert p.returncode == 0, p.stdout + p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].split() == ["CHECK", "STATUS", "DETAIL", "FIX"]
    assert [line.split()[0] for line in lines[1:-1]] == ["redis", "persistence", "eviction", "clock", "engines",
                                                         "control", "tools", "test"]
    assert lines[-1] == "8 checks: 8 ok, 0 warnings, 0 failed"


def test_no_control_worker_fails_its_row_with_the_fix(broken: WorkerFleet) -> None:
    p = doctor(broken.url, broken.prefix, "--json")
    assert p.returncode == 1, p.stdout + p.stderr
    control = rows(p)["control"]
    assert control["status"] == "FAIL"
    assert "no worker consumes the control queue" in control["detail"]
    assert control["fix"] == "start a control worker: pstack worker --control"
    assert rows(p)["test process"]["status"] == "FAIL"  # not run: it would never end


def test_a_worker_without_a_compiler_fails_its_row_with_the_fix(broken: WorkerFleet) -> None:
    p = doctor(broken.url, broken.prefix, "--json")
    assert p.returncode == 1
    tools = rows(p)["tools psim@nocc"]
    assert tools["status"] == "FAIL"
    assert tools["detail"] == "a C++ compiler not found on the worker's PATH"
    assert "apt-get install g++" in tools["fix"]


def test_redis_without_persistence_fails_that_row(on_fleet: WorkerFleet) -> None:
    """The tests' own redis-server runs without persistence (and without a password)."""
    p = doctor(on_fleet.url, on_fleet.prefix, "--json")
    assert p.returncode == 1, p.stdout + p.stderr
    checks = rows(p)
    assert checks["persistence"]["status"] == "FAIL"
    assert checks["persistence"]["fix"].startswith("appendonly yes in redis.conf")
    assert checks["redis"]["status"] == "WARN"  # no password: a warning, which passes
    assert checks["test process"]["status"] == "OK"
    assert [name for name, c in checks.items() if c["status"] == "FAIL"] == ["persistence"]


def test_without_a_fleet_it_says_what_it_needs(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PSTACK_")}
    p = subprocess.run([*PSTACK_CMD, "doctor"], capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path)
    assert p.returncode == 5
    assert p.stderr.strip().startswith("pstack: error: pstack doctor checks a fleet and needs PSTACK_REDIS_URL")
    assert p.stdout == ""
