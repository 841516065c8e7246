"""v3 indexed output pins: sendIndex chooses one edge (tests/data/v3/indexed.xml)."""
from __future__ import annotations

from pathlib import Path

import pytest

from pstack_tasks.exceptions import GraphError, SimulationFailed
from pstack_tasks.graph.application import EDGE_WORDS
from pstack_tasks.graph.loader import load
from pstack_tasks.native.simulate import psim
from support.apps import V3_DATA, v3_variant
from support.paths import KEY_PREFIX

INDEXED = V3_DATA / "indexed.xml"
LEAVES = ["l0", "l1", "l2", "l3"]


@pytest.mark.parametrize("rmap", [None, {"l0": 1, "l2": 1}, {"l0": 1, "l1": 2, "l2": 3}],
                         ids=["1 region", "2 regions", "4 regions"])
def test_each_send_reaches_exactly_the_edge_it_names(rmap: dict[str, int] | None, redis_url: str) -> None:
    result = psim(INDEXED, rmap, {"quiet": True, "redis_url": redis_url, "prefix": KEY_PREFIX})
    states = result["states"]
    # hub sends seq 0..7 to index seq % 4; l0 has sendIndex 2, l1 0, l2 3, l3 1
    assert [states[n]["seqsum"] for n in LEAVES] == [2 + 6, 0 + 4, 3 + 7, 1 + 5]
    assert all(states[n]["got"] == 2 for n in LEAVES)
    assert result["metrics"]["Delivered messages"] == result["metrics"]["Sent messages"] == 8


def test_edges_without_send_index_are_numbered_in_file_order(tmp_path: Path) -> None:
    text = INDEXED.read_text()
    for k in range(4):
        text = text.replace(f' sendIndex="{k}"', "")
    path = tmp_path / "app.xml"
    path.write_text(text)
    edges = list(load(path).instance.edges)
    assert [edges[i + 5] for i in range(0, len(edges), EDGE_WORDS)] == [0, 1, 2, 3]
    states = psim(path, options={"quiet": True})["states"]
    assert [states[n]["seqsum"] for n in LEAVES] == [0 + 4, 1 + 5, 2 + 6, 3 + 7]


@pytest.mark.parametrize("old, new, words", [
    ('sendIndex="3"', 'sendIndex="0"', ["sendIndex 0 is used by two edges"]),
    ('sendIndex="3"', 'sendIndex="4"', ["none with sendIndex 3", "0..3"]),
    (' sendIndex="3"', "", ["some edges have a sendIndex and some do not"]),
    ('sendIndex="3"', 'sendIndex="-1"', ["not an integer >= 0"]),
    ('indexed="true"', 'indexed="false"', ["not indexed"]),
])
def test_bad_send_indices_are_refused(tmp_path: Path, old: str, new: str, words: list[str]) -> None:
    with pytest.raises(GraphError) as info:
        load(v3_variant("indexed.xml", old, new, tmp_path))
    assert info.value.line is not None
    for w in words:
        assert w in str(info.value)


def test_a_send_index_out_of_range_fails_the_run_by_name(tmp_path: Path) -> None:
    app = v3_variant("indexed.xml", "*sendIndex = deviceState->next % deviceProperties->fanout;",
                     "*sendIndex = deviceState->next;", tmp_path)
    with pytest.raises(SimulationFailed, match=r"OnSend of pin 'out'.*device 'hub' set \*sendIndex = 4, but the pin "
                                               r"has 4 edges"):
        psim(app, options={"quiet": True})


def test_an_unset_send_index_fails_the_run_by_name(tmp_path: Path) -> None:
    app = v3_variant("indexed.xml", "*sendIndex = deviceState->next % deviceProperties->fanout;", "", tmp_path)
    with pytest.raises(SimulationFailed, match="device 'hub' did not set \\*sendIndex"):
        psim(app, options={"quiet": True})
