"""Redis restarting under a running process, with and without its data (AOF), and Redis lost
while a client waits: one clear reason, no reused pid, nothing left running."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pstack_tasks.exceptions import ProcessFailed, RedisUnavailable
from pstack_tasks.fleet.client import Future, block, engines, run
from pstack_tasks.fleet.epoch import DATA_LOST, RESTARTED
from support.apps import variant
from support.faults import FOREVER, RING, RestartableRedis, engines_of, wait_for
from support.fleet import WorkerFleet, fleet_env
from support.paths import PSTACK


@pytest.fixture(params=[False, True], ids=["no-persistence", "aof"])
def restartable(request: pytest.FixtureRequest, redis_url: str) -> Iterator[tuple[RestartableRedis, WorkerFleet]]:
    server = RestartableRedis(aof=request.param).start()
    fleet = WorkerFleet(server.url, [("psim", "r1", 2)], control=False)
    try:
        with fleet_env(fleet):
            yield server, fleet
    finally:
        fleet.fleet.close()
        server.close()


def running_with_a_waiting_client(fleet: WorkerFleet, tmp_path: Path
                                  ) -> tuple[Future, threading.Thread, list[BaseException]]:
    """A 2-region process that never ends on its own, running, and a client blocked on it."""
    f = run(variant(RING, *FOREVER, tmp_path), rmap={"n1": 1}, async_=True)
    wait_for(lambda: len(engines_of(fleet)) >= 2, 30, "two engines running")
    client, caught = waiting_client(f.pid)
    time.sleep(0.5)
    return f, client, caught


def waiting_client(pid: int) -> tuple[threading.Thread, list[BaseException]]:
    caught: list[BaseException] = []

    def wait() -> None:
        try:
            block(pid, timeout=60)
        except BaseException as e:  # what the client saw
            caught.append(e)
    t = threading.Thread(target=wait)
    t.start()
    return t, caught


def test_a_redis_restart_fails_the_running_process_and_never_reuses_its_pid(
        tmp_path: Path, restartable: tuple[RestartableRedis, WorkerFleet]) -> None:
    server, fleet = restartable
    f, client, caught = running_with_a_waiting_client(fleet, tmp_path)
    t0 = time.monotonic()
    server.restart()
    client.join(20)
    assert not client.is_alive() and len(caught) == 1
    e = caught[0]
    assert isinstance(e, ProcessFailed), repr(e)
    assert e.reason == (RESTARTED if server.aof else DATA_LOST)
    assert time.monotonic() - t0 < 10
    wait_for(lambda: not fleet.leftovers(), 10, "engines and relays gone")
    # the worker registers again (within a quarter of PSTACK_HEARTBEAT_TTL), the fleet is usable
    # again, and a new process gets a pid never handed out before
    wait_for(lambda: any(w["alive"] for w in engines()), 10, "the worker registered again")
    after = run(PSTACK / RING, rmap={"n1": 1}, timeout=60)
    assert after["pid"] > f.pid
    assert after["metrics"]["Delivered messages"] == 40


@pytest.mark.parametrize("restartable", [False], ids=["no-persistence"], indirect=True)
def test_redis_lost_while_a_client_waits_is_one_clear_error(
        tmp_path: Path, restartable: tuple[RestartableRedis, WorkerFleet]) -> None:
    server, fleet = restartable
    f, client, caught = running_with_a_waiting_client(fleet, tmp_path)
    t0 = time.monotonic()
    server.stop()
    client.join(20)
    assert len(caught) == 1 and isinstance(caught[0], RedisUnavailable), caught
    assert str(caught[0]).startswith(f"lost Redis at {server.url} while waiting for process {f.pid}: ")
    assert "\n" not in str(caught[0])
    assert time.monotonic() - t0 < 6 + 4  # PSTACK_HEARTBEAT_TTL of patience, then the error
    wait_for(lambda: not engines_of(fleet), 15, "the engines stopped (their relays lost Redis)")
