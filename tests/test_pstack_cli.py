"""The pstack command as users run it: the embedded default, and ps/kill/engines on a fleet."""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from support.apps import variant
from support.commands import RING, bare_env, pstack
from support.fleet import WorkerFleet, processes_table


@pytest.mark.fleet
def test_embedded_run_needs_no_servers_and_leaves_nothing() -> None:
    p = pstack("run", "--rmap", '{"n1": 1, "n2": 2}', RING, env=bare_env())
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["Metric [Delivered messages]: 40", "Metric [Exit code]: 0"] + [
        f"State [n{i}]: state = 0, counter = 10, toggle_buffer_ptr = 0" for i in range(4)]
    left = [args for _, _, args in processes_table() if "psim@local" in args or "control@local" in args]
    assert left == []


@pytest.mark.fleet
def test_embedded_run_reports_a_failure_with_its_exit_status(tmp_path: Path) -> None:
    crash = "if (deviceState->counter == 3) { volatile int* p = 0; *p = 1; }"
    app = variant("ring-oscillator-01.xml", "bool finished = deviceState->counter >= 10;",
                  "bool finished = deviceState->counter >= 10; " + crash, tmp_path)
    p = pstack("run", "-r", "--rmap", '{"n1": 1}', str(app), env=bare_env())
    assert p.returncode == 1
    assert p.stderr.startswith("pstack: error: process 1 failed: region ")
    assert "crashed: segmentation fault" in p.stderr


def test_ps_kill_and_engines_from_the_shell(tmp_path: Path, on_fleet: WorkerFleet) -> None:
    env = dict(os.environ)  # the fleet's PSTACK_REDIS_URL and PSTACK_KEY_PREFIX
    forever = variant("ring-oscillator-01.xml", "bool finished = deviceState->counter >= 10;",
                      "bool finished = false;", tmp_path)
    p = pstack("run", "--async", "--rmap", '{"n1": 1}', str(forever), env=env)
    assert p.returncode == 0, p.stderr
    pid = int(p.stdout.strip())
    p = pstack("ps", "-r", env=env)
    row = next(r for r in json.loads(p.stdout) if r["pid"] == pid)
    assert row["state"] in ("Waiting", "Running") and row["graph_type"] == "ro" and row["regions"] == [0, 1]
    time.sleep(0.5)
    p = pstack("kill", str(pid), env=env)
    assert p.stdout.strip() == f"{pid} Killed", p.stderr
    p = pstack("ps", env=env)
    lines = p.stdout.splitlines()
    assert lines[0].split() == ["PID", "STATE", "REC", "USER", "ENGINE", "REGIONS", "SHARE", "DEVICES", "EDGES",
                                "DELIVERED", "ELAPSED", "GRAPH", "REASON"]  # pcli's ps() and top's columns
    line = next(x for x in lines if x.split()[0] == str(pid))
    assert line.split()[1:6] == ["Killed", "-", row["user"], "psim", "2"]
    assert re.search(rf" ro +killed by {row['user']}$", line)
    assert "\x1b[" not in p.stdout  # into a pipe: plain text
    p = pstack("engines", env=env)
    assert p.stdout.splitlines()[0].split() == ["TYPE", "NAME", "SLOTS", "BUSY", "USAGE", "STATUS", "PID", "SINCE"]
    hosts = {line.split()[1] for line in p.stdout.splitlines()[1:]}
    assert {"alpha", "beta", "delta"} <= hosts


def test_worker_without_a_redis_url_says_so() -> None:
    p = pstack("worker", "--engine", "psim", env=bare_env())
    assert p.returncode == 5
    assert "PSTACK_REDIS_URL is not set" in p.stderr


@pytest.mark.fleet
def test_unknown_engine_type_is_named() -> None:
    p = pstack("run", "-e", "warp", RING, env=bare_env())
    assert p.returncode == 5 and "unknown engine type 'warp'" in p.stderr


def test_run_shows_live_progress_and_ps_the_delivered_count(tmp_path: Path, on_fleet: WorkerFleet) -> None:
    from support.apps import token_ring
    app = tmp_path / "tokens.xml"
    app.write_text(token_ring(100, 10000))  # every hop crosses regions: a few seconds
    rmap = json.dumps({f"n{i}": i % 2 for i in range(100)})
    p = pstack("run", "--progress", "-r", "--rmap", rmap, str(app), env=dict(os.environ))
    assert p.returncode == 0, p.stderr
    result = json.loads(p.stdout)
    assert result["metrics"]["Delivered messages"] == 1_000_000
    counts = [int(line.split(", ")[1].split()[0].replace(",", "")) for line in p.stderr.splitlines()
              if line.startswith(f"process {result['pid']} Running: 2 regions, ")]
    assert len(counts) >= 2 and counts == sorted(counts) and 0 < counts[-1] <= 1_000_000
    p = pstack("ps", env=dict(os.environ))
    line = next(x for x in p.stdout.splitlines() if x.split()[0] == str(result["pid"]))
    assert line.split()[9] == "1000000"  # the DELIVERED column
