"""A handler that sleeps forever is stopped by the wall-clock time limit, from outside the engine:
psim (one engine, a split) and the fleet, with ``--time-limit`` or ``PSTACK_DEFAULT_TIME_LIMIT``."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pstack_tasks.exceptions import ProcessFailed
from pstack_tasks.fleet.client import run, status
from support.apps import variant
from support.faults import RECEIVE, SLEEPY, wait_for
from support.fleet import WorkerFleet, our_processes

PSIM = [sys.executable, "-m", "pstack_tasks.ui.cli.psim"]
WHERE = "(in handler OnReceive of pin 'input' (device type 'device') of device 'device1')"


def sleepy(tmp_path: Path) -> Path:
    return variant("basic-01.xml", RECEIVE, SLEEPY, tmp_path, out="sleepy.xml")


def psim(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], float]:
    subprocess.run([*PSIM, *args, "--max-steps", "1"], capture_output=True, timeout=120)  # compiled first
    t0 = time.monotonic()
    p = subprocess.run([*PSIM, *args], capture_output=True, text=True, timeout=60, env=env)
    return p, time.monotonic() - t0


def test_psim_time_limit_stops_a_sleeping_handler(tmp_path: Path, no_leftovers: None) -> None:
    p, took = psim(str(sleepy(tmp_path)), "-q", "--time-limit", "1")
    assert p.returncode == 1, p.stderr
    assert p.stderr.strip() == f"psim: error: time limit of 1 s exceeded {WHERE}"
    assert took < 1 + 4  # the limit, the 1 s grace, the interpreter's start on a loaded machine


def test_default_time_limit_bounds_a_split_psim_run(tmp_path: Path, redis_url: str, no_leftovers: None) -> None:
    work = tmp_path / "tmp"  # the run's own temporary directory: other runs on the machine leave theirs
    work.mkdir()
    env = dict(os.environ, PSTACK_DEFAULT_TIME_LIMIT="1", PSTACK_REDIS_URL=redis_url, TMPDIR=str(work))
    p, took = psim(str(sleepy(tmp_path)), "-q", "--rmap", '{"device1": 1}', env=env)
    assert p.returncode == 1, p.stderr
    assert p.stderr.startswith("psim: error: time limit of 1 s exceeded (")
    assert "region 1 in handler OnReceive of pin 'input' (device type 'device') of device 'device1'" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    assert took < 1 + 5
    assert not list(work.glob("pstack-run-*"))


def test_fleet_time_limit_fails_the_process_naming_the_handler(tmp_path: Path, on_fleet: WorkerFleet) -> None:
    run(sleepy(tmp_path), rmap={"device1": 1}, options={"max_steps": 1}, timeout=120)  # compiled on the fleet
    t0 = time.monotonic()
    with pytest.raises(ProcessFailed) as e:
        run(sleepy(tmp_path), rmap={"device1": 1}, options={"time_limit": 2}, timeout=30)
    took = time.monotonic() - t0
    assert e.value.state == "Failed"
    assert e.value.reason.startswith("region 1 on ") and "time limit of 2 s exceeded" in e.value.reason
    assert "device 'device1'" in e.value.reason
    assert took < 2 + 4  # the limit, the watcher's grace, the process's start and end
    wait_for(lambda: not on_fleet.leftovers(), 3, "engines gone")
    assert status(e.value.pid)["reason"] == e.value.reason
    assert not [p for p in our_processes() if "pstack-celery/engines/" in p]
