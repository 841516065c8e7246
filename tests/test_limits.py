"""Engines run under the workers' resource limits: a handler over them fails its process.

A fleet of its own, started with PSTACK_ENGINE_CPU_LIMIT=1 and PSTACK_ENGINE_MEMORY_LIMIT=256
(read where engines run: on the workers), runs handlers that spin forever and that allocate
without end. Each process ends Failed, promptly, with the limit and the handler named, and no
engine or relay is left running.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pstack_tasks.exceptions import ProcessFailed
from pstack_tasks.fleet.client import run, status
from support.apps import variant
from support.fleet import WorkerFleet, fleet_env

RING = "ring-oscillator-01.xml"
HANDLER = "bool finished = deviceState->counter >= 10;"
SPIN = HANDLER + " if (deviceState->counter == 3) { volatile unsigned long spin = 0; for (;;) ++spin; }"
# Allocate and touch 1 MiB at a time, keeping every block, and never check for NULL (as a careless
# handler would): only the address-space limit stops it.  The writes go through a volatile pointer:
# otherwise the compiler may drop the unobservable allocations of an endless loop altogether.
HOG = HANDLER + (" if (deviceState->counter == 3) { for (;;) {"
                 " volatile char* block = (volatile char*)malloc(1 << 20);"
                 " for (int i = 0; i < (1 << 20); i += 4096) block[i] = 1; } }")


@pytest.fixture(scope="module")
def limited(redis_url: str) -> Iterator[WorkerFleet]:
    with pytest.MonkeyPatch.context() as mp:  # the workers take their settings from this environment
        mp.setenv("PSTACK_ENGINE_CPU_LIMIT", "1")
        mp.setenv("PSTACK_ENGINE_MEMORY_LIMIT", "256")
        fleet = WorkerFleet(redis_url, [("psim", "lim1", 2), ("psim", "lim2", 2)])
    try:
        with fleet_env(fleet):
            yield fleet
    finally:
        fleet.close()


def _fails(app: Path, fleet: WorkerFleet, within: float) -> tuple[ProcessFailed, float]:
    t0 = time.monotonic()
    with pytest.raises(ProcessFailed) as e:
        run(app, rmap={"n1": 1, "n2": 1}, timeout=60)
    took = time.monotonic() - t0
    deadline = time.monotonic() + 5
    while fleet.leftovers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not fleet.leftovers(), f"left running: {fleet.leftovers()}"
    assert took < within, f"took {took:.1f} s"
    return e.value, took


def test_a_handler_that_spins_forever_fails_on_the_cpu_limit(tmp_path: Path, limited: WorkerFleet) -> None:
    app = variant(RING, HANDLER, SPIN, tmp_path, out="spin.xml")
    error, _ = _fails(app, limited, within=15)  # 1 s of CPU, plus compiling the engine once
    assert error.state == "Failed"
    assert error.reason.startswith("region ")
    assert "the engine exceeded its CPU time limit of 1 s (in handler " in error.reason, error.reason
    assert "of device 'n" in error.reason
    assert status(error.pid)["state"] == "Failed"


def test_a_handler_that_allocates_without_end_fails_on_the_memory_limit(tmp_path: Path,
                                                                          limited: WorkerFleet) -> None:
    app = variant(RING, HANDLER, HOG, tmp_path, out="hog.xml")
    error, _ = _fails(app, limited, within=30)
    assert error.state == "Failed"
    assert "the engine exceeded its memory (address space) limit of 256 MiB (in handler " in error.reason, \
        error.reason
    assert "of device 'n" in error.reason


def test_the_limits_are_those_of_the_workers_not_the_client(tmp_path: Path, limited: WorkerFleet,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PSTACK_ENGINE_CPU_LIMIT", "1000")  # a client cannot lift the fleet's limit
    app = variant(RING, HANDLER, SPIN, tmp_path, out="spin.xml")
    error, _ = _fails(app, limited, within=30)
    assert "CPU time limit of 1 s" in error.reason


def test_an_application_within_the_limits_is_unaffected(limited: WorkerFleet) -> None:
    from support.expected import check
    from support.paths import PSTACK
    result = run(PSTACK / RING, rmap={"n1": 1, "n2": 1}, timeout=60)
    check(result, RING)
