"""Worker matching on a real fleet (Celery workers, dummy engines): a group-restricted worker takes
only its group's processes, a user-restricted one only its user's, a process no worker serves is
refused at submit with one line, and `pstack worker --group/--user` starts such a worker."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pstack_tasks.exceptions import ProcessRefused
from pstack_tasks.fleet.client import block, engines, ps, run, status
from pstack_tasks.fleet.matching import Serving
from support.commands import PSTACK_CMD, RING, pstack
from support.fleet import WorkerFleet, fleet_env


@pytest.fixture(scope="module")
def groups(redis_url: str) -> Iterator[WorkerFleet]:
    """dummy@lab serves group lab (2 slots), dummy@bobs serves user bob (1 slot); nobody else."""
    f = WorkerFleet(redis_url, [])
    try:
        f.fleet.start("dummy", "lab", 2, serving=Serving(groups=("lab",)))
        f.fleet.start("dummy", "bobs", 1, serving=Serving(users=("bob",)))
        f.fleet.wait_registered([("dummy", "lab"), ("dummy", "bobs")])
        with fleet_env(f):
            yield f
    finally:
        f.close()


def test_restricted_workers_take_only_their_groups_and_users_processes(
        groups: WorkerFleet, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PSTACK_USER", "alice")
    lab = [run(RING, engine="dummy", options={"seconds": 0.3}, group="lab", async_=True) for _ in range(4)]
    monkeypatch.setenv("PSTACK_USER", "bob")
    monkeypatch.setenv("PSTACK_GROUP", "")
    bobs = [run(RING, engine="dummy", options={"seconds": 0.3}, async_=True) for _ in range(3)]
    block(lab + bobs, timeout=120)
    assert {h for f in lab for h in status(f.pid)["hosts"].values()} == {"lab"}
    assert {h for f in bobs for h in status(f.pid)["hosts"].values()} == {"bobs"}
    assert {status(f.pid)["group"] for f in lab} == {"lab"} and status(bobs[0].pid)["group"] is None
    # a process's group from PSTACK_GROUP; bob's run in group lab may use both workers at once
    monkeypatch.setenv("PSTACK_GROUP", "lab")
    both = run(RING, rmap={"n1": 1, "n2": 2}, engine="dummy", options={"seconds": 0.2}, timeout=120)
    assert sorted(status(both["pid"])["hosts"].values()) == ["bobs", "lab", "lab"]
    assert [p["group"] for p in ps(user="bob", limit=1)] == ["lab"]


def test_a_process_no_worker_serves_is_refused_at_submit_with_one_line(
        groups: WorkerFleet, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PSTACK_USER", "carol")
    with pytest.raises(ProcessRefused, match=r"no dummy worker serves group physics or user carol: the 2 online"):
        run(RING, engine="dummy", group="physics")
    with pytest.raises(ProcessRefused, match=r"needs 3 dummy slots at once; the dummy workers serving group lab "
                                             r"or user carol have 2"):
        run(RING, rmap={"n1": 1, "n2": 2}, engine="dummy", group="lab")
    env = dict(os.environ, PSTACK_USER="carol")
    out = pstack("run", "-e", "dummy", "--group", "physics", RING, env=env)
    lines = out.stderr.strip().splitlines()
    assert out.returncode != 0 and len(lines) == 1, out.stderr
    assert "refused: no dummy worker serves group physics or user carol" in lines[0]


def test_pstack_worker_group_starts_a_worker_that_serves_only_that_group(
        groups: WorkerFleet, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    with log.open("wb") as err:
        worker = subprocess.Popen([*PSTACK_CMD, "worker", "-e", "dummy", "-n", "physcli", "-s", "1",
                                   "--group", "physics", "--user", "dave", "-l", "info"], env=dict(os.environ),
                                  stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not any(w["host"] == "physcli" and w["alive"] for w in engines()):
            assert worker.poll() is None, log.read_text()
            time.sleep(0.2)
        assert "serving only groups physics users dave" in log.read_text()
        row = next(w for w in engines() if w["host"] == "physcli")
        assert row["serves"] == "groups physics users dave"
        monkeypatch.setenv("PSTACK_USER", "carol")
        result = run(RING, engine="dummy", options={"seconds": 0.1}, group="physics", timeout=120)
        assert result["hosts"] == {"0": "physcli"}
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)


def test_ps_lists_one_groups_processes_in_pstack_ps_and_pcli(
        groups: WorkerFleet, monkeypatch: pytest.MonkeyPatch) -> None:
    from pstack_tasks.ui.shell import builtins
    monkeypatch.setenv("PSTACK_USER", "alice")
    lab = run(RING, engine="dummy", options={"seconds": 0.1}, group="lab", async_=True)
    monkeypatch.setenv("PSTACK_USER", "bob")
    monkeypatch.setenv("PSTACK_GROUP", "")
    other = run(RING, engine="dummy", options={"seconds": 0.1}, async_=True)
    block([lab, other], timeout=120)
    listed = ps(group="lab")
    assert lab.pid in [p["pid"] for p in listed] and other.pid not in [p["pid"] for p in listed]
    assert {p["group"] for p in listed} == {"lab"}
    out = pstack("ps", "--group", "lab", env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    rows = {int(line.split()[0]): line.split() for line in out.stdout.splitlines()[1:]}
    assert lab.pid in rows and other.pid not in rows and rows[lab.pid][3] == "alice/lab"
    assert {r[3].partition("/")[2] for r in rows.values()} == {"lab"}  # USER is user/group
    assert [p["pid"] for p in builtins.ps(group="lab")] == [p["pid"] for p in listed]
    assert str(builtins.ps(group="nobody")).splitlines() == [str(builtins.ps(group="nobody")).splitlines()[0]]
