"""The commands under faults: one line and exit 5 when Redis is unreachable or refuses the
password, usage errors named, Ctrl-C on `pstack run` kills its process, psim SIGTERM cleans up,
a celery command without PSTACK_REDIS_URL fails, compile errors name the user's file, and the
process index is tidied."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pstack_tasks.exceptions import ProcessFailed
from pstack_tasks.fleet import store
from pstack_tasks.fleet.client import run, status
from pstack_tasks.fleet.keys import Keys
from pstack_tasks.fleet.lifecycle import trim_index
from pstack_tasks.native.redis_server import EmbeddedRedis
from support.apps import line_of, variant
from support.faults import FOREVER, RECEIVE, RING, SLEEPY, engines_of, wait_for
from support.fleet import WorkerFleet
from support.paths import PSTACK

PSTACK_CMD = [sys.executable, "-m", "pstack_tasks.ui.cli.pstack"]


def pstack(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PSTACK_CMD, *args], capture_output=True, text=True, timeout=timeout, env=env)


def env_with(url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PSTACK_")}
    if url:
        env["PSTACK_REDIS_URL"] = url
    return env


@pytest.mark.fleet
def test_unreachable_or_refusing_redis_is_one_line_and_exit_5() -> None:
    with EmbeddedRedis(password="right") as locked:
        wrong = locked.url.replace(":right@", ":wrong@")
        cases = {"unreachable": "redis://127.0.0.1:1/0", "wrong password": wrong}
        for what, url in cases.items():
            for args in (("engines",), ("status", "3"), ("worker", "-e", "psim")):
                t0 = time.monotonic()
                p = pstack(*args, env=env_with(url))
                assert p.returncode == 5, (what, args, p.stderr)
                assert len(p.stderr.strip().splitlines()) == 1 and p.stderr.startswith("pstack: error: "), p.stderr
                assert "wrong" not in p.stderr  # the password is never shown
                assert time.monotonic() - t0 < 15, (what, args)


def test_worker_needs_an_engine_or_control() -> None:
    p = pstack("worker", env=env_with("redis://127.0.0.1:1/0"))
    assert p.returncode == 2 and "give --engine ENGINE (an engine worker, e.g. -e psim) or --control" in p.stderr


def test_celery_without_a_redis_url_fails_in_one_line() -> None:
    p = subprocess.run([sys.executable, "-m", "celery", "-A", "pstack_tasks.celery_app", "worker"],
                       capture_output=True, text=True, timeout=60, env=env_with(None))
    assert p.returncode == 5
    assert p.stderr.strip().splitlines() == ["celery: error: PSTACK_REDIS_URL is not set: it names the Redis of "
                                             "the worker fleet (redis://[user:password@]host:port/db); docs/fleet.md"]


def test_psim_sigterm_cleans_up_and_exits_143(tmp_path: Path, redis_url: str, no_leftovers: None) -> None:
    app = variant("basic-01.xml", RECEIVE, SLEEPY, tmp_path, out="sleepy.xml")
    work = tmp_path / "tmp"
    work.mkdir()
    env = dict(env_with(redis_url), TMPDIR=str(work))
    p = subprocess.Popen([sys.executable, "-m", "pstack_tasks.ui.cli.psim", str(app), "-q", "--rmap",
                          '{"device1": 1}'], env=env, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: list(work.glob("pstack-run-*")), 120, "the run's directory")
    time.sleep(1.0)  # the engines started
    t0 = time.monotonic()
    p.send_signal(signal.SIGTERM)
    assert p.wait(10) == 143
    assert time.monotonic() - t0 < 5
    assert p.stderr is not None and p.stderr.read().strip() == "psim: terminated"
    p.stderr.close()
    assert not list(work.glob("pstack-run-*"))


def test_ctrl_c_on_pstack_run_kills_its_process(tmp_path: Path, on_fleet: WorkerFleet) -> None:
    app = variant(RING, *FOREVER, tmp_path)
    env = dict(os.environ)
    p = subprocess.Popen([*PSTACK_CMD, "run", str(app), "--rmap", '{"n1": 1}', "--no-progress"], env=env,
                         stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    wait_for(lambda: len(engines_of(on_fleet)) >= 2, 60, "two engines running")
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    assert p.wait(15) == 130
    assert time.monotonic() - t0 < 8
    assert p.stderr is not None
    err = p.stderr.read().strip()
    p.stderr.close()
    pid = int(err.split("killed process ")[1].split(":")[0])
    assert err == f"pstack: interrupted: killed process {pid}: Killed"
    assert status(pid)["state"] == "Killed"
    wait_for(lambda: not on_fleet.leftovers(), 5, "engines gone")


def test_kill_of_an_unknown_pid_still_kills_the_others(tmp_path: Path, on_fleet: WorkerFleet) -> None:
    f = run(variant(RING, *FOREVER, tmp_path), rmap={"n1": 1}, async_=True)
    wait_for(lambda: status(f.pid)["state"] == "Running", 30, "running")
    p = pstack("kill", "999999999999", str(f.pid), env=dict(os.environ))
    assert p.returncode == 1
    assert f"{f.pid} Killed" in p.stdout and "999999999999" in p.stderr
    wait_for(lambda: not on_fleet.leftovers(), 5, "engines gone")


def test_a_compile_error_on_the_fleet_names_the_users_file(tmp_path: Path, on_fleet: WorkerFleet) -> None:
    app = variant(RING, "bool finished = deviceState->counter >= 10;", "bool finished = nonsense_x;", tmp_path,
                  out="broken.xml")
    with pytest.raises(ProcessFailed) as e:
        run(app, rmap={"n1": 1}, timeout=120)
    assert f"{app}:{line_of(app, 'nonsense_x')}: compile error" in e.value.reason
    assert "pstack-celery/apps/" not in e.value.reason


def test_the_process_index_drops_expired_records(on_fleet: WorkerFleet) -> None:
    r, keys = store.client(), Keys.current()
    done = run(PSTACK / RING, timeout=60)["pid"]
    r.zadd(keys.procs, {"12": 12, "13": 13})  # records that have expired
    assert trim_index(r, keys) >= 2
    assert r.zscore(keys.procs, "12") is None and r.zscore(keys.procs, str(done)) is not None
