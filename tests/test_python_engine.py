"""Python application engines (docs/debugging.md, "Engines in Python"): pstack's example engine,
the ring oscillator with n1 served by a Python handler in the client, on a real fleet."""
from __future__ import annotations

from typing import Any

import pytest

from pstack_tasks import Engine
from pstack_tasks.exceptions import ConfigurationError
from pstack_tasks.fleet.client import block, run
from support.fleet import WorkerFleet
from support.paths import PSTACK

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
