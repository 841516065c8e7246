"""v3 edges: per-edge Properties and State, payload-less messages, device SharedCode, a pin without
edges (tests/data/v3/edges.xml), in one region and split."""
from __future__ import annotations

import pytest

from pstack_tasks.native.simulate import psim
from support.apps import V3_DATA
from support.paths import KEY_PREFIX

EDGES = V3_DATA / "edges.xml"


@pytest.mark.parametrize("rmap", [None, {"a": 1, "b": 2}], ids=["1 region", "3 regions"])
def test_each_edge_has_its_own_properties_and_state(rmap: dict[str, int] | None, redis_url: str) -> None:
    result = psim(EDGES, rmap, {"quiet": True, "redis_url": redis_url, "prefix": KEY_PREFIX})
    # edge a->k: w=10, last=7 (default); edge b->k: w=1 (default), last=1000 (<S>)
    assert result["states"]["k"] == {"total": (10 + 20 + 30 + 7) + (1 + 2 + 1000), "seen": 5}
    m = result["metrics"]
    # the pin without edges still runs OnSend (sent += 100) and counts as a send
    assert result["states"]["a"] == {"sent": 103} and result["states"]["b"] == {"sent": 102}
    assert (m["Sent messages"], m["Delivered messages"]) == (7, 5)
