"""Items between regions travel packed, many to a Redis list element (docs/engine-protocol.md,
"Items and queues"): every item still arrives exactly once, in elements of many items, with
elements split at their size cap, and the termination counter (which counts elements) still ends
the run exactly when the last item is handled."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from pstack_tasks import psim
from support.apps import token_ring
from support.paths import KEY_PREFIX

STATS = re.compile(r"wire region (\d+): pushes (\d+), elements out (\d+) \(items (\d+)\), pops (\d+), "
                   r"blocking waits (\d+) \([0-9.]+ s\), elements in (\d+) \(items (\d+)\), "
                   r"largest element (\d+) bytes")


def wire_stats(path: Path) -> dict[int, dict[str, int]]:
    """Each region's line of the engine's wire counters ($PSTACK_WIRE_STATS)."""
    names = ("pushes", "elements_out", "items_out", "pops", "waits", "elements_in", "items_in", "largest")
    out = {}
    for line in path.read_text().splitlines():
        m = STATS.fullmatch(line)
        assert m, f"unexpected wire counters line: {line!r}"
        out[int(m[1])] = dict(zip(names, map(int, m.groups()[1:])))
    return out


@pytest.mark.parametrize("nodes,limit,regions", [(1000, 20, 2), (3000, 4, 2), (999, 6, 3)])
def test_items_cross_regions_packed_and_exactly_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     redis_url: str, no_leftovers: None,
                                                     nodes: int, limit: int, regions: int) -> None:
    # Given a multi-token ring with every hop crossing regions (3000 nodes: a round's items for
    # one region, about 50 KiB of text, exceed one element's 32 KiB cap),
    app = tmp_path / "tokens.xml"
    app.write_text(token_ring(nodes, limit))
    stats = tmp_path / "wire.txt"
    monkeypatch.setenv("PSTACK_WIRE_STATS", str(stats))
    rmap = {f"n{i}": i % regions for i in range(nodes)}
    # when it runs split,
    result = psim(app, rmap=rmap, options={"quiet": True, "redis_url": redis_url, "prefix": KEY_PREFIX})
    # then every token arrives exactly once, and the run ends by quiescence;
    assert result["metrics"]["Delivered messages"] == nodes * limit
    assert result["metrics"]["Remote messages received"] == nodes * limit
    assert result["metrics"]["Exit reason"] == "quiescence"
    assert all(s["counter"] == limit and s["pending"] == 0 for s in result["states"].values())
    # and the items went many to an element: each region's items, in far fewer elements.
    wire = wire_stats(stats)
    assert sorted(wire) == list(range(regions))
    sent = sum(w["items_out"] for w in wire.values())
    elements = sum(w["elements_out"] for w in wire.values())
    assert sent == nodes * limit
    assert elements * 10 < sent, f"{elements} elements carried {sent} items"
    # Every element sent was taken (plus the QUIESCENT item the IDLE script pushes to each region).
    assert sum(w["elements_in"] for w in wire.values()) == elements + regions
    assert sum(w["items_in"] for w in wire.values()) == sent + regions
    # An element is closed once it holds 32 KiB, so none is larger than that plus one item; 3000
    # nodes fill one (a round's items for one region are about 50 KiB of text).
    largest = max(w["largest"] for w in wire.values())
    assert largest < (32 << 10) + 100
    if nodes == 3000:
        assert largest >= 32 << 10


def test_a_region_writing_while_its_replies_pile_up_does_not_deadlock(redis_url: str, tmp_path: Path,
                                                                      no_leftovers: None) -> None:
    # Given 30,000 tokens in flight, every hop crossing regions: an engine writes big batches
    # while big LPOP replies come back through the same socat (which, blocked writing a reply to
    # an engine that was itself blocked writing, used to stop both for good after ~1 M messages),
    nodes, limit = 30_000, 100
    app = tmp_path / "tokens.xml"
    app.write_text(token_ring(nodes, limit))
    rmap = {f"n{i}": i % 2 for i in range(nodes)}
    # when it runs split (a time limit turns a stall into a failure, not a hung test),
    result = psim(app, rmap=rmap, options={"quiet": True, "states": False, "time_limit": 120,
                                           "redis_url": redis_url, "prefix": KEY_PREFIX})
    # then it ends by quiescence with every token delivered.
    assert result["metrics"]["Exit reason"] == "quiescence"
    assert result["metrics"]["Delivered messages"] == nodes * limit
