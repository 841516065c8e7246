"""Automatic recovery (docs/persistence.md): a 2-region process taking a checkpoint every second
loses a worker to SIGKILL; it goes Recovering (waiting for slots: one worker is left, it needs
two), a replacement worker joins, and it resumes from its last checkpoint to exactly the result
of an uninterrupted run.  Recovery is decided by the cause's code (fleet/causes.py), not its
words: a handler that crashes in a checkpointed process still fails it, naming the handler."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from pstack_tasks.exceptions import ProcessFailed
from pstack_tasks.fleet import store
from pstack_tasks.fleet.causes import WORKER_LOST, Cause, is_worker_loss, record_first
from pstack_tasks.fleet.client import block, run, status
from pstack_tasks.fleet.keys import Keys
from pstack_tasks.fleet.persistence.checkpoints import checkpoints
from pstack_tasks.fleet.persistence.recovery import recoveries
from pstack_tasks.native.simulate import psim
from pstack_tasks.ui.shell import builtins
from pstack_tasks.ui.shell.persist import PERSIST_BUILTINS
from pstack_tasks.ui.top import render, snapshot
from support.apps import split, token_ring
from support.commands import pstack
from support.faults import wait_for
from support.fleet import WorkerFleet
from support.flower import FlowerClient, region_tasks, running_flower

DEVICES, LIMIT = 30, 150_000
NAMES = [f"n{i}" for i in range(DEVICES)]


def test_a_process_with_checkpoints_recovers_from_a_killed_worker_to_the_uninterrupted_result(
        tmp_path: Path, two_workers: WorkerFleet) -> None:
    """... and the recovery is shown everywhere (docs/persistence.md, "How a recovery is shown"):
    ``status``, ``pstack status``/``ps``/``recoveries``, top, pcli and Flower, while it waits for a
    slot (Recovering) and after it resumed."""
    app = tmp_path / "ring.xml"
    app.write_text(token_ring(DEVICES, LIMIT))
    reference = psim(str(app), options={"quiet": True})
    with running_flower(two_workers, tmp_path / "flower.log") as flower:
        f = run(app, rmap=split(NAMES, 2), async_=True, checkpoint_every=1)
        wait_for(lambda: len(checkpoints(f.pid)) >= 1, 60, "a first checkpoint")
        assert status(f.pid)["state"] == "Running", "the run ended before the kill: make it longer"
        victim = "w2" if status(f.pid)["hosts"].get("1") == "w2" else "w1"
        two_workers.fleet.kill(f"psim@{victim}")
        wait_for(lambda: status(f.pid)["state"] in ("Recovering", "Failed", "Done"), 60, "the process recovering")
        assert status(f.pid)["state"] == "Recovering", status(f.pid)["reason"]  # one slot left: it waits
        (note,) = status(f.pid)["recoveries"]
        assert victim in note["reason"] and ("worker was lost" in note["reason"] or "died" in note["reason"])
        assert 1 <= note["checkpoint"] <= max(c["id"] for c in checkpoints(f.pid))
        assert abs(note["time"] - time.time()) < 60
        shown_recovering(f.pid, note, flower)
        two_workers.fleet.start("psim", "w3", 1)
        shown_resumed(f.pid, flower)
        result = block(f, timeout=180)
    assert result["metrics"]["Delivered messages"] == DEVICES * LIMIT
    assert result["states"] == reference["states"]
    done = status(f.pid)
    assert done["state"] == "Done" and done["recoveries"] == [note] == recoveries(f.pid)
    row = next(x for x in pstack("ps", env=dict(os.environ)).stdout.splitlines() if x.split()[0] == str(f.pid))
    assert row.split()[:3] == [str(f.pid), "Done", "1"]


def shown_recovering(pid: int, note: dict[str, Any], flower: FlowerClient) -> None:
    """While it waits for a slot: its row says Recovering, how many recoveries, from which
    checkpoint and why, in ``pstack ps``, top and pcli's ps(); ``pstack status``, ``pstack
    recoveries``, pcli's status() and Flower's ``pstack.result`` hold the note."""
    env = dict(os.environ)  # the fleet's PSTACK_REDIS_URL and PSTACK_KEY_PREFIX (fleet_env)
    why = f"recovering from checkpoint {note['checkpoint']}: {note['reason']}"
    p = pstack("ps", env=env)
    row = next(x for x in p.stdout.splitlines() if x.split()[0] == str(pid))
    assert row.split()[:3] == [str(pid), "Recovering", "1"] and row.endswith(why), p.stdout
    screen = render(snapshot(), height=40, width=250)
    assert any(x.split()[:3] == [str(pid), "Recovering", "1"] and x.endswith(why) for x in screen), screen
    assert "1 active" in screen[0]
    pcli_rows = str(builtins.ps()).splitlines()
    assert any(x.split()[:3] == [str(pid), "Recovering", "1"] and x.endswith(why) for x in pcli_rows)
    assert builtins.status(pid)["recoveries"] == [note] == PERSIST_BUILTINS["recoveries"](pid)
    assert json.loads(pstack("status", str(pid), env=env).stdout)["recoveries"] == [note]
    listed = pstack("recoveries", str(pid), env=env).stdout.splitlines()
    assert listed[0].split() == ["N", "TIME", "CHECKPOINT", "REASON"]
    assert listed[1].split()[0] == "1" and listed[1].split()[3] == str(note["checkpoint"])
    assert listed[1].endswith(note["reason"])
    answer = flower.result(flower.apply("pstack.result", pid))
    assert answer["state"] == "SUCCESS", answer
    assert answer["result"]["state"] == "Recovering" and answer["result"]["recoveries"] == [note]


def shown_resumed(pid: int, flower: FlowerClient) -> None:
    """Once resumed, its regions' live progress in Flower says it runs after a recovery."""
    wait_for(lambda: status(pid)["state"] == "Running", 60, "the process running again")

    def progress_after_recovery() -> bool:
        tasks = region_tasks(flower, f"tokens:{pid}/r0").values()
        return any(t["state"] == "PROGRESS" and (t.get("result") or "").endswith(", after recovery 1") for t in tasks)
    wait_for(progress_after_recovery, 30, "Flower showing region 0's progress after recovery 1")


def test_a_handler_crash_in_a_checkpointed_process_still_fails_naming_the_handler(
        tmp_path: Path, two_workers: WorkerFleet) -> None:
    """Device n3 dereferences NULL a fifth of the way through the run, after the first checkpoint: the
    process could resume, but its cause is the application's (``SimulationFailed``), so it fails."""
    crash = f"if (deviceProperties->id == 3 && deviceState->counter == {LIMIT // 5}) {{ volatile int* p = 0; *p = 1; }}"
    app = tmp_path / "crash.xml"
    app.write_text(token_ring(DEVICES, LIMIT, on_receive_extra=crash))
    f = run(app, rmap=split(NAMES, 2), async_=True, checkpoint_every=1)
    with pytest.raises(ProcessFailed) as e:
        block(f, timeout=180)
    assert e.value.state == "Failed" and e.value.error == "SimulationFailed", e.value
    assert "handler OnReceive of pin 'in'" in e.value.reason and "device 'n3' crashed" in e.value.reason
    assert checkpoints(f.pid), "the crash came before the first checkpoint: nothing tested"
    assert status(f.pid)["recoveries"] == [] == recoveries(f.pid)


def test_the_first_cause_is_recorded_with_its_code_and_only_the_first(redis_url: str) -> None:
    """A lost worker is told from an application failure by the code stored with the first cause."""
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    keys = Keys("pstest-causes:")
    try:
        r.hset(keys.proc(7), "state", "Running")
        lost = Cause.worker_lost("region 1 on w2 stopped responding (its worker was lost)")
        assert record_first(r, keys, 7, lost) == lost.text
        assert record_first(r, keys, 7, Cause("region 0 on w1: crashed", "SimulationFailed")) == lost.text
        assert r.hget(keys.proc(7), "error") == WORKER_LOST and is_worker_loss(store.text_hash(r.hgetall(keys.proc(7))))
        assert not is_worker_loss({"state": "Running", "error": "SimulationFailed"})
        assert record_first(r, keys, 8, lost) == lost.text and not r.exists(keys.proc(8))  # no stray record
    finally:
        for key in r.scan_iter("pstest-causes:*"):
            r.delete(key)
