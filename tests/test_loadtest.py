"""``pstack loadtest`` on real fleets: every process accounted for, kills included; a process
whose record vanishes mid-run is reported lost by pid and fails the run."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest
import redis

from support.fleet import WorkerFleet, processes_table

PSTACK_CMD = [sys.executable, "-m", "pstack_tasks.ui.cli.pstack"]
SUMMARY = re.compile(r"^(\d+) processes: (\d+) done, (\d+) killed, (\d+) failed, (\d+) lost, (\d+) duplicated, "
                     r"[\d.]+/s, p50 [\d.]+ s, p99 [\d.]+ s$")


def loadtest_cmd(*args: str) -> list[str]:
    return [*PSTACK_CMD, "loadtest", *args]


def summary_counts(stdout: str) -> dict[str, int]:
    m = SUMMARY.match(stdout.splitlines()[-1])
    assert m, stdout
    return dict(zip(("processes", "done", "killed", "failed", "lost", "duplicated"), map(int, m.groups())))


def test_a_small_load_with_kills_is_fully_accounted_for(on_fleet: WorkerFleet) -> None:
    t0 = time.monotonic()
    p = subprocess.run(loadtest_cmd("--processes", "40", "--clients", "4", "--kill-fraction", "0.25", "--seed", "3"),
                       capture_output=True, text=True, timeout=300, env=dict(os.environ))
    took = time.monotonic() - t0
    n = summary_counts(p.stdout)
    assert n["done"] + n["killed"] + n["failed"] + n["lost"] == n["processes"] == 40
    assert n["lost"] == n["duplicated"] == n["failed"] == 0, p.stdout + p.stderr
    assert 5 <= n["killed"] <= 10  # 10 asked; one may end Done before its kill reaches it
    assert [line for line in p.stdout.splitlines() if line.startswith("leftover:")] == []
    assert p.returncode == 0, p.stdout + p.stderr
    assert took < 240


def test_a_lost_process_is_named_and_fails_the_run(on_fleet: WorkerFleet) -> None:
    r = redis.Redis.from_url(on_fleet.url, decode_responses=True)
    first = int(r.get(f"{on_fleet.prefix}next_pid") or 0) + 1
    proc = subprocess.Popen(loadtest_cmd("--processes", "30", "--clients", "2"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    deleted = None
    deadline = time.monotonic() + 120
    while deleted is None and time.monotonic() < deadline and proc.poll() is None:
        for pid in range(first, first + 30):
            if r.hget(f"{on_fleet.prefix}proc:{pid}", "state") == "Done":
                r.delete(f"{on_fleet.prefix}proc:{pid}")
                deleted = pid
                break
        time.sleep(0.02)
    out, err = proc.communicate(timeout=300)
    r.close()
    assert deleted is not None, "the load ended before a process could be deleted"
    assert proc.returncode == 1, out + err
    assert f"lost: process {deleted}: Redis has no record of it (deleted, or lost with a Redis restart)" in out
    n = summary_counts(out)
    assert n["lost"] == 1 and n["done"] + n["killed"] + n["failed"] + n["lost"] == 30, out


@pytest.mark.fleet
def test_on_the_embedded_stack_nothing_is_left_running() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PSTACK_")}
    p = subprocess.run(loadtest_cmd("-n", "12", "-c", "3", "--kill-fraction", "0.25", "--slots", "2"),
                       capture_output=True, text=True, timeout=300, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "on the embedded stack (2 psim slots)" in p.stdout.splitlines()[0]
    assert "leftovers: none (slots, keys of these pids, engine processes on this machine)" in p.stdout
    n = summary_counts(p.stdout)
    assert n["processes"] == 12 and n["lost"] == n["duplicated"] == n["failed"] == 0
    left = [args for _, ppid, args in processes_table()
            if ("psim@local" in args or "control@local" in args) and ppid in (1, os.getpid())]
    assert left == []


@pytest.mark.fleet
def test_killed_running_regions_leave_no_keys() -> None:
    # a region killed while running used to write result:<pid> and recreate q:<pid>.<r>/.active/.calls
    # (no expiry) after the process's end had deleted them (worker/region.py _end_region)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PSTACK_")}
    p = subprocess.run(loadtest_cmd("-n", "100", "-c", "4", "--kill-fraction", "0.3", "--seed", "5"),
                       capture_output=True, text=True, timeout=300, env=env)
    assert [line for line in p.stdout.splitlines() if line.startswith("leftover:")] == []
    assert p.returncode == 0, p.stdout + p.stderr


def test_the_summary_line_and_percentiles() -> None:
    from pstack_tasks.fleet.audit import Audit, Outcome
    from pstack_tasks.fleet.loadtest import LoadReport, LoadSpec, summary
    spec = LoadSpec(processes=4, clients=2, xml="", rmap={}, engine="psim")
    found = Audit(done=[1, 2, 3], killed=[4], latencies=[0.5, 1.0, 2.0])
    report = LoadReport(spec, [Outcome(i, pid=i + 1) for i in range(4)], 0.5, 2.0, found.latencies, found)
    assert summary(report) == ("4 processes: 3 done, 1 killed, 0 failed, 0 lost, 0 duplicated, 2.0/s, "
                               "p50 1.0 s, p99 2.0 s")
    assert report.passed and report.submissions_per_s == 8.0


def test_the_packaged_ring_oscillator_is_pstacks() -> None:
    from pstack_tasks.fleet.sample import ring_oscillator
    from support.paths import PSTACK
    assert ring_oscillator() == (PSTACK / "ring-oscillator-01.xml").read_text()
