"""A split region sweeps its ready devices in device order (engines/psim/runtime/pstack_sweep.hpp):
every device still gets every turn it is owed, across the bitmap's words and its wrap-around, in
rings longer than one word of the second level (4096 devices), whichever way the tokens go."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from pstack_tasks import psim
from support.apps import token_ring
from support.paths import KEY_PREFIX

N = 9000  # more than two words of the sweep's second level


def backward(xml: str) -> str:
    """The same ring with every edge reversed: tokens travel towards lower device numbers, so
    each one wakes a device behind the sweep's cursor."""
    return re.sub(r'<EdgeI path="n(\d+):in-n(\d+):out"/>', lambda m: f'<EdgeI path="n{m[2]}:in-n{m[1]}:out"/>', xml)


@pytest.mark.parametrize("direction", ["forward", "backward"])
@pytest.mark.parametrize("split", ["halves", "every third"])
def test_a_swept_split_delivers_every_token_as_one_region_does(tmp_path: Path, redis_url: str, direction: str,
                                                               split: str, no_leftovers: None) -> None:
    # Given a ring of 9000 nodes, each starting a token that goes round 3 times,
    xml = token_ring(N, 3)
    app = tmp_path / "ring.xml"
    app.write_text(backward(xml) if direction == "backward" else xml)
    rmap = {f"n{i}": (i * 2 // N if split == "halves" else i % 3) for i in range(N)}
    # when it runs split, and in one region,
    result = psim(app, rmap=rmap, options={"quiet": True, "redis_url": redis_url, "prefix": KEY_PREFIX})
    alone = psim(app, options={"quiet": True})
    # then the split delivers every message once and ends in the same states.
    assert result["metrics"]["Delivered messages"] == N * 3
    assert result["metrics"]["Exit reason"] == "quiescence"
    assert result["states"] == alone["states"]
