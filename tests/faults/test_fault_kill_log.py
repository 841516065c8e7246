"""A user's kill is not a worker's error: killing a running 2-region process leaves no ERROR line,
ChordError or traceback in any worker's log (issue 12 item 9: a kill is logged at INFO)."""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from pstack_tasks.fleet.client import kill, run, status
from support.apps import variant
from support.faults import FOREVER, RING, engines_of, wait_for
from support.fleet import WorkerFleet, started_fleet

NODES = ("psim@k1", "psim@k2", "control@ctl")
BAD = re.compile(r"ERROR|CRITICAL|ChordError|Traceback")


@pytest.fixture(scope="module")
def logged_fleet(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerFleet]:
    logs = tmp_path_factory.mktemp("worker-logs")
    with started_fleet(redis_url, [("psim", "k1", 1), ("psim", "k2", 1)], log_dir=logs, loglevel="info") as fleet:
        yield fleet


def logs(fleet: WorkerFleet) -> dict[str, list[str]]:
    return {node: fleet.fleet.log_path(node).read_text(errors="replace").splitlines() for node in NODES}


def test_killing_a_running_process_logs_no_error(tmp_path: Path, logged_fleet: WorkerFleet) -> None:
    f = run(variant(RING, *FOREVER, tmp_path), rmap={"n1": 1}, async_=True)
    wait_for(lambda: len(engines_of(logged_fleet)) >= 2, 30, "both regions' engines running")
    assert status(f.pid)["state"] == "Running"
    assert kill(f.pid, wait=15) == "Killed"
    # wait until both region tasks are in the logs (succeeded, or an error: Celery's "raised"),
    # so every line this kill causes has been written (no chord: the regions end the process)
    ended = [f"{f.pid}/r{r}[" for r in (0, 1)]
    wait_for(lambda: all(any(t in line and ("succeeded" in line or "raised" in line)
                             for line in every_line(logged_fleet)) for t in ended), 15, "both region tasks ending")
    assert not any(f"{f.pid}/merge[" in line or "ChordError" in line for line in every_line(logged_fleet))
    wait_for(lambda: not logged_fleet.leftovers(), 5, "engines and relays gone")
    bad = [f"{node}: {line}" for node, lines in logs(logged_fleet).items() for line in lines if BAD.search(line)]
    assert bad == []
    stops = [line for line in every_line(logged_fleet) if "stopped: killed by " in line]
    said = sorted(line.split("] ", 1)[1].split(":")[0] for line in stops)
    assert said == [f"region {f.pid}/{r} stopped" for r in (0, 1)], stops
    assert all("INFO/" in line for line in stops), stops


def every_line(fleet: WorkerFleet) -> list[str]:
    return [line for lines in logs(fleet).values() for line in lines]
