"""pstack's own test applications and the results every engine, in every split, must give
(tests/data/pstack/README.md)."""
from __future__ import annotations

from typing import Any

EXPECTED = {
    "basic-01.xml": (10, {"device0": {"counter": 10}, "device1": {"counter": 10}}),
    "basic-02.xml": (20, {"device0": {"counter": 10, "rts": 0}, "device1": {"counter": 10, "rts": 0}}),
    "ring-oscillator-01.xml": (40, {f"n{i}": {"state": 0, "counter": 10, "toggle_buffer_ptr": 0} for i in range(4)}),
}
DEVICES = {"basic-01.xml": ["device0", "device1"], "basic-02.xml": ["device0", "device1"],
           "ring-oscillator-01.xml": ["n0", "n1", "n2", "n3"]}


def check(result: dict[str, Any], app: str) -> None:
    delivered, states = EXPECTED[app]
    assert result["metrics"]["Delivered messages"] == delivered
    assert result["metrics"]["Exit code"] == 0
    assert result["states"] == states
