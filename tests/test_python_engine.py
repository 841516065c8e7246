"""Python application engines (docs/debugging.md, "Engines in Python"): pstack's example engine,
the ring oscillator with n1 served by a Python handler in the client, on a real fleet."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pstack_tasks import Engine
from pstack_tasks.exceptions import ConfigurationError
from pstack_tasks.fleet.client import block, run, status
from support.faults import wait_for
from support.fleet import WorkerFleet
from support.paths import CORPUS, PSTACK

RING = str(PSTACK / "ring-oscillator-01.xml")


def ring_node(engine: Engine, msg: dict[str, Any]) -> None:
    """What n1's C handler does, in Python: count, toggle, pass the token on (or end at 10)."""
    state = engine.state(msg["dst"])
    if state["counter"] >= 10:
        return
    state["counter"] += 1
    state["state"] = 1 - state["state"]
    engine.send(src=msg["dst"], pin="toggle_out", payload={"src": 1, "dst": 0xFFFFFFFF})


def test_the_ring_with_n1_in_python_gives_pstacks_result(on_fleet: WorkerFleet) -> None:
    engine = Engine(ring_node)
    future = run(RING, rmap={"n1": 1}, rcon={1: engine}, async_=True)
    part = engine.run()
    result = block(future, timeout=120)
    assert result["metrics"]["Delivered messages"] == 40
    assert {d: s["counter"] for d, s in result["states"].items()} == {"n0": 10, "n1": 10, "n2": 10, "n3": 10}
    assert part["metrics"]["Delivered messages"] == 10
    assert result["metrics"]["Exit reason"] == "handler_exit"
    assert result["hosts"]["1"].startswith("client:")


def test_messages_carry_their_source_destination_type_and_payload(on_fleet: WorkerFleet) -> None:
    engine = Engine()
    future = run(RING, rmap={"n1": 1}, rcon={1: engine}, async_=True)
    first = engine.receive(timeout=60)
    assert first == {"src": "n0", "src_pin": "toggle_out", "dst": "n1", "dst_pin": "toggle_in", "type": "toggle",
                     "payload": {"src": 0, "dst": 0xFFFFFFFF}}
    engine.handler = ring_node
    ring_node(engine, first)
    engine.run()
    assert block(future, timeout=120)["metrics"]["Delivered messages"] == 40


def test_an_engine_for_a_region_not_in_use_is_refused(on_fleet: WorkerFleet) -> None:
    with pytest.raises(ConfigurationError, match="rcon pins region '2'"):
        run(RING, rmap={"n1": 1}, rcon={2: Engine(ring_node)}, async_=True)


PING_PONG_TYPE = CORPUS / "test_external_ping_pong_graph_type.xml"
PING_PONG_INSTANCE = CORPUS / "test_external_ping_pong_graph_inst_1.xml"


@pytest.fixture
def ping_pong(tmp_path: Path) -> str:
    """The corpus pair as one file (a worker gets the application's text, not the file its
    GraphTypeReference names)."""
    gtype = PING_PONG_TYPE.read_text().split("<Graphs", 1)[1].split(">", 1)[1].rsplit("</Graphs>", 1)[0]
    inst = PING_PONG_INSTANCE.read_text()
    head, rest = inst.split("<GraphTypeReference", 1)
    path = tmp_path / "test_external_ping_pong.xml"
    path.write_text(head + gtype + rest.split("/>", 1)[1])
    return str(path)


def test_external_ping_pong_gives_the_reference_outcome(ping_pong: str, on_fleet: WorkerFleet) -> None:
    """graph_schema's C++ provider, in Python: ten round trips outsider_0 -> insider_0 -> outsider_0,
    each reply checked, then a halt message with code 0 (the corpus's expected outcome)."""
    expected = json.loads((CORPUS / "expected_outcomes.json").read_text())["test_external_ping_pong_graph_inst_1"]
    outsider = Engine()
    future = run(ping_pong, rmap={"outsider_0": 1, "__halt__": 1}, rcon={1: outsider}, async_=True)
    for i in range(10):
        outsider.send(src="outsider_0", pin="out", payload1=i + 1, payload2=float(i * i))
        reply = outsider.receive(timeout=60)
        assert reply is not None, (outsider.metrics, status(future.pid)["reason"])
        assert reply["src"] == "insider_0" and reply["dst"] == "outsider_0"
        assert reply["payload"] == {"payload1": i + 1, "payload2": float(i * i)}
    outsider.send(src="outsider_0", pin="stop", code=0)
    assert outsider.ended
    result = block(future, timeout=120)
    assert result["metrics"]["Exit reason"] == expected["exit_reason"] == "halt"
    assert result["metrics"]["Exit code"] == expected["exit_code"] == 0
    assert result["metrics"]["Delivered messages"] == expected["deliveries"] == 10
    assert result["hosts"]["0"] != result["hosts"]["1"] and result["hosts"]["1"].startswith("client:")


def test_externals_on_the_fleet_are_refused_naming_them(ping_pong: str, on_fleet: WorkerFleet) -> None:
    with pytest.raises(ConfigurationError, match=r"external devices outsider_0, __halt__ are in a region the fleet"):
        run(ping_pong, rmap={"insider_0": 1}, async_=True)


#: a client that serves n1 with a handler that never returns (it holds its region busy), and
#: says its process id first
SLOW_CLIENT = """
import sys, time
from pstack_tasks import Engine
from pstack_tasks.fleet.client import run
engine = Engine(lambda engine, msg: time.sleep(3600))
future = run(sys.argv[1], rmap={"n1": 1}, rcon={1: engine}, async_=True)
print(future.pid, flush=True)
engine.run()
"""
#: the client's heartbeat TTL in this test (the default is 6 s)
CLIENT_TTL = 2.0


def test_a_killed_client_fails_its_process_naming_the_lost_region(on_fleet: WorkerFleet) -> None:
    """SIGKILL of the client serving region 1: its heartbeat expires, the fleet regions' guards
    (or the reaper) fail the process with one line naming the region and the client, and the
    fleet's engines stop (on_fleet checks that nothing is left running)."""
    env = dict(os.environ, PSTACK_HEARTBEAT_TTL=str(CLIENT_TTL))
    client = subprocess.Popen([sys.executable, "-c", SLOW_CLIENT, RING], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert client.stdout is not None
        pid = int(client.stdout.readline())
        wait_for(lambda: status(pid)["state"] == "Running", 60, "the process admitted")
        time.sleep(CLIENT_TTL)  # the client beats past a TTL: a live client is not taken for lost
        assert status(pid)["state"] == "Running"
        os.kill(client.pid, signal.SIGKILL)
        client.wait(timeout=10)
        took = wait_for(lambda: status(pid)["state"] != "Running", 30, "the process ended after its client died")
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
        if client.stdout is not None:
            client.stdout.close()
    assert took < CLIENT_TTL + 1.0 + 9  # the TTL, the guards' (and reaper's) second, a loaded machine
    rec = status(pid)
    assert rec["state"] == "Failed"
    assert re.fullmatch(rf"region 1 \(served by client \S+ pid {client.pid}\) was lost: its heartbeat expired",
                        rec["reason"]), rec["reason"]
