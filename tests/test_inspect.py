"""inspect and inject: message items decoded and encoded as the engines write them, and a running
fleet process looked into and fed (its queues, counters and hosts; a message counted to the end)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from pstack_tasks.exceptions import ConfigurationError, PermissionDenied, ProcessError
from pstack_tasks.fleet.client import block, kill, run, status
from pstack_tasks.fleet.inspection import inject, inspect
from pstack_tasks.fleet.message_items import decode, encode, sender
from pstack_tasks.graph import loader
from support.apps import token_ring
from support.commands import pstack
from support.faults import wait_for
from support.fleet import WorkerFleet

#: n2 never finishes its first message: region 1 stays busy and its queue fills with n1's tokens
STUCK = "if (deviceProperties->id == 2) { while (1) usleep(1000); }"
SPLIT = {"n0": 0, "n1": 0, "n2": 1, "n3": 1}


def test_items_round_trip_with_the_message_layout_and_bad_names_are_refused() -> None:
    app = loader.load(token_ring(4, 10).encode())
    s = sender(app, "n1", "out")
    item = encode(s, {"src": 7, "x": 0.1})
    assert item == "0 1 0 2 7 0.10000000000000001"  # the engine's own text: double with 17 digits
    assert decode(app, item) == {"kind": "message", "src": "n1", "pin": "out", "type": "token",
                                 "fields": {"src": 7, "x": 0.1}}
    assert encode(s, {}) == "0 1 0 2 0 0"  # defaults
    assert decode(app, "2")["kind"] == "quiescent" and decode(app, "1 3")["kind"] == "stop"
    assert decode(app, "0 1 0 5 1 2")["kind"] == "unreadable"
    with pytest.raises(ConfigurationError, match="no field y"):
        encode(s, {"y": 1})
    with pytest.raises(ConfigurationError, match="no output pin 'in'"):
        sender(app, "n1", "in")
    with pytest.raises(ConfigurationError, match="no device 'n9'"):
        sender(app, "n9", "out")
    with pytest.raises(ConfigurationError, match="src: -1 is out of range for uint32_t"):
        encode(s, {"src": -1})


def test_inspect_shows_queued_items_and_an_injected_message_is_delivered(tmp_path: Path, on_fleet: WorkerFleet,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    app = tmp_path / "stuck.xml"
    app.write_text(token_ring(4, 1_000_000, on_receive_extra=STUCK))
    f = run(app, rmap=SPLIT, async_=True)
    try:
        wait_for(lambda: inspect(f.pid, sample=0)["regions"][1]["queue"] > 0, 60, "n1's tokens queued for region 1")
        # region 0 runs dry (every token ends up in front of n2) and waits
        wait_for(lambda: inspect(f.pid, sample=0.3)["regions"][0]["status"] == "idle", 30, "region 0 idle")
        injected = inject(f.pid, "n1", "out", src=99, x=7.5)
        assert injected["regions"] == [1]
        view = inspect(f.pid, items=100)
        assert view["state"] == "Running" and [r["region"] for r in view["regions"]] == [0, 1]
        one = view["regions"][1]
        assert one["host"] in ("alpha", "beta") and one["status"] in ("busy", "idle")
        # n1's token(s) and ours, in arrival order; an element of the queue packs one or more items
        assert len(one["items"]) >= one["queue"] >= 2
        assert one["items"][0] == {"kind": "message", "src": "n1", "pin": "out", "type": "token",
                                   "fields": {"src": 1, "x": 0.25}}
        assert one["items"][-1]["fields"] == {"src": 99, "x": 7.5}
        # a message into region 0 (n3 -> n0) wakes it: n0 delivers it, then n1 delivers n0's token
        before = status(f.pid)["progress"][0]["delivered"]
        assert inject(f.pid, "n3", "out", src=98)["regions"] == [0]
        wait_for(lambda: status(f.pid)["progress"][0]["delivered"] == before + 2, 30, "the injected token delivered")
        _from_the_shell(f.pid)
        monkeypatch.setenv("PSTACK_USER", "mallory")
        with pytest.raises(PermissionDenied, match="only .* or an admin .* can inject into it"):
            inject(f.pid, "n3", "out")
        monkeypatch.setenv("PSTACK_ADMINS", "mallory")
        inject(f.pid, "n3", "out")
    finally:
        monkeypatch.delenv("PSTACK_USER")
        assert kill(f.pid) == "Killed"
    with pytest.raises(ProcessError, match=f"process {f.pid} is Killed"):
        inject(f.pid, "n3", "out")
    assert all(r["status"] == "ended" and r["items"] == [] for r in inspect(f.pid)["regions"])


def _from_the_shell(pid: int) -> None:
    """``pstack inject`` and ``pstack inspect`` on the same process: a table, items one per line."""
    env = dict(os.environ)
    p = pstack("inject", str(pid), "n1", "out", "src=5", "x=2.5", env=env)
    assert p.returncode == 0 and p.stdout.strip() == f"injected '0 1 0 2 5 2.5' into process {pid}, regions 1", p.stderr
    p = pstack("inject", str(pid), "n1", "out", "y=1", env=env)
    assert p.returncode != 0 and p.stderr.strip().splitlines() == [
        "pstack: error: message type 'token' of pin 'out' has no field y (its fields: src, x)"]
    p = pstack("inspect", "-n", "100", str(pid), env=env)
    lines = p.stdout.splitlines()
    assert p.returncode == 0 and lines[0].startswith(f"process {pid} Running  user "), p.stderr
    assert lines[1].split() == ["REGION", "HOST", "STATUS", "QUEUE", "DELIVERED", "STEPS"]
    assert lines[3].split()[:2] == ["1", lines[3].split()[1]] and lines[4].startswith("region 1 queue (first ")
    assert lines[-1] == '  n1:out token {"src": 5, "x": 2.5}'


def test_an_injected_message_is_counted_to_the_end_of_the_run(tmp_path: Path, on_fleet: WorkerFleet) -> None:
    app = tmp_path / "sleepy.xml"
    app.write_text(token_ring(4, 300, on_receive_extra="usleep(2000);"))
    f = run(app, rmap=SPLIT, async_=True)
    wait_for(lambda: status(f.pid)["state"] == "Running", 30, "the process admitted")
    assert inject(f.pid, "n3", "out", src=3, x=1000.0)["regions"] == [0]
    result = block(f, timeout=120)
    # the extra token travels the ring until a device has had its 300: one delivery more in all
    assert result["metrics"]["Delivered messages"] == 4 * 300 + 1
    assert result["states"]["n0"]["counter"] == 301 and result["states"]["n0"]["sum"] > 1000
    assert [result["states"][f"n{i}"]["counter"] for i in (1, 2, 3)] == [300, 300, 300]


def test_the_names_are_importable_from_the_package_as_pstack_users_wrote_them() -> None:
    import pstack_tasks
    from pstack_tasks import draw
    from pstack_tasks import inject as package_inject
    from pstack_tasks import inspect as package_inspect
    from pstack_tasks.ui.drawing import draw as drawing_draw
    assert (package_inspect, package_inject, draw) == (inspect, inject, drawing_draw)
    assert {"inspect", "inject", "draw"} <= set(pstack_tasks.__all__)
