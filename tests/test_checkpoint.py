"""Checkpoints and restart (docs/persistence.md): a checkpoint taken mid-run, the process killed,
then restarted from that checkpoint as the same pid on another region map gives exactly the result
of an uninterrupted run; checkpoints are listed, kept to the last K, and refused when they cannot be."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from pstack_tasks.exceptions import ProcessError
from pstack_tasks.fleet.client import block, kill, run, status
from pstack_tasks.fleet.persistence.api import restart
from pstack_tasks.fleet.persistence.checkpoints import checkpoint, checkpoints
from pstack_tasks.native.simulate import psim
from support.apps import split, token_ring
from support.commands import pstack
from support.faults import wait_for
from support.fleet import WorkerFleet
from support.paths import CORPUS

DEVICES, LIMIT = 30, 60_000
NAMES = [f"n{i}" for i in range(DEVICES)]


def test_restart_from_a_named_checkpoint_on_another_region_map_gives_the_uninterrupted_result(
        tmp_path: Path, on_fleet: WorkerFleet, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PSTACK_CHECKPOINTS_KEPT", "2")
    app = tmp_path / "ring.xml"
    app.write_text(token_ring(DEVICES, LIMIT))
    reference = psim(str(app), options={"quiet": True})
    f = run(app, rmap=split(NAMES, 3), async_=True)
    wait_for(lambda: status(f.pid)["delivered"] > 0, 60, "the ring running")
    first = checkpoint(f.pid)
    taken = [first, checkpoint(f.pid), checkpoint(f.pid)]
    assert [c["id"] for c in checkpoints(f.pid)] == [taken[1]["id"], taken[2]["id"]]  # the last K
    chosen = taken[1]
    assert 0 < chosen["delivered"] < DEVICES * LIMIT and chosen["where"] == "redis" and chosen["size"] > 0
    running = status(f.pid)
    assert running["state"] == "Running" and running["last_checkpoint"] == taken[2]["time"]
    kill(f.pid)
    with pytest.raises(ProcessError, match=f"process {f.pid} has no checkpoint {first['id']}"):
        restart(f.pid, checkpoint=first["id"])
    again = restart(f.pid, checkpoint=chosen["id"], rmap=split(NAMES, 2))
    assert again.pid == f.pid
    result = block(again, timeout=120)
    assert result["metrics"]["Delivered messages"] == DEVICES * LIMIT
    assert sorted(result["regions"]) == ["0", "1"]
    assert result["states"] == reference["states"]


def test_a_running_process_cannot_be_restarted_and_an_ended_one_needs_a_checkpoint(
        tmp_path: Path, on_fleet: WorkerFleet) -> None:
    app = tmp_path / "small.xml"
    app.write_text(token_ring(4, 10))
    f = run(app, rmap=split(NAMES[:4], 2), async_=True)
    block(f, timeout=60)
    with pytest.raises(ProcessError, match=f"process {f.pid} has no checkpoint$"):
        restart(f.pid)


def test_the_commands_snapshot_checkpoint_list_and_restart_a_process(tmp_path: Path, on_fleet: WorkerFleet) -> None:
    app = tmp_path / "ring.xml"
    app.write_text(token_ring(DEVICES, 2 * LIMIT))
    f = run(app, rmap=split(NAMES, 2), async_=True)
    env = dict(os.environ)
    wait_for(lambda: status(f.pid)["delivered"] > 0, 60, "the ring running")
    out = tmp_path / "snap.json"
    p = pstack("snapshot", str(f.pid), "--out", str(out), env=env)
    assert p.returncode == 0, p.stderr
    assert re.fullmatch(rf"process {f.pid}: {DEVICES} device states, \d+ messages in flight, \d+ delivered; "
                        rf"paused \d+\.\d{{3}} s -> {re.escape(str(out))}\n", p.stdout)
    assert len(json.loads(out.read_text())["states"]) == DEVICES
    p = pstack("checkpoint", str(f.pid), env=env)
    assert p.returncode == 0 and re.fullmatch(rf"process {f.pid}: checkpoint 1, \d+ bytes in redis, paused "
                                              r"\d+\.\d{3} s\n", p.stdout), p.stderr
    p = pstack("checkpoints", str(f.pid), env=env)
    lines = p.stdout.splitlines()
    assert p.returncode == 0 and lines[0].split() == ["ID", "TIME", "SIZE", "DELIVERED", "PAUSE", "WHERE"]
    assert len(lines) == 2 and lines[1].split()[0] == "1" and lines[1].split()[-1] == "redis"
    kill(f.pid)
    p = pstack("restart", str(f.pid), "--rmap", json.dumps(split(NAMES, 3)), env=env, timeout=300)
    assert p.returncode == 0, p.stderr
    assert f"Metric [Delivered messages]: {DEVICES * 2 * LIMIT}" in p.stdout.splitlines()
    p = pstack("snapshot", str(f.pid), env=env)
    assert p.returncode != 0 and p.stderr.strip() == (f"pstack: error: process {f.pid} is Done: only a running "
                                                      "process can be snapshot")


def test_clock_tree_restarted_from_a_checkpoint_on_another_split_ends_as_an_uninterrupted_run(
        tmp_path: Path, on_fleet: WorkerFleet) -> None:
    """The v3 corpus's clock_tree (its reference is stable), made to tick 3000 times: a checkpoint
    mid-run on 3 regions, killed, restarted on 2 by METIS: handler_exit at the last tick, every
    state as one region's run leaves it."""
    text = (CORPUS / "clock_tree_4_4.xml").read_text()
    assert '"max_ticks": 100' in text
    app = tmp_path / "clock_tree.xml"
    app.write_text(text.replace('"max_ticks": 100', '"max_ticks": 3000'))
    reference = psim(str(app), options={"quiet": True})
    f = run(app, regions=3, async_=True)
    wait_for(lambda: status(f.pid)["delivered"] > 0, 60, "the clock ticking")
    taken = checkpoint(f.pid)
    kill(f.pid)
    assert 0 < taken["delivered"] < reference["metrics"]["Delivered messages"], "the run ended first: tick longer"
    result = block(restart(f.pid, rmap="auto:2"), timeout=120)
    assert result["metrics"]["Exit reason"] == "handler_exit" and len(result["regions"]) == 2
    assert result["states"] == reference["states"]
    assert result["metrics"]["Delivered messages"] == reference["metrics"]["Delivered messages"]
