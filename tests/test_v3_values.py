"""v3 typed data: TypeDefs, defaults (attribute and <Default>, dense and sparse), nested tuples,
graph Properties with instance values, device <P>/<S> (tests/data/v3/values.xml)."""
from __future__ import annotations

from pathlib import Path

import pytest

from pstack_tasks.exceptions import GraphError
from pstack_tasks.graph.loader import load
from pstack_tasks.graph.values import Packer
from pstack_tasks.native.simulate import psim
from support.apps import V3_DATA, v3_variant

VALUES = V3_DATA / "values.xml"


def test_defaults_and_instance_values_reach_the_handlers() -> None:
    result = psim(VALUES, options={"quiet": True, "full_state": True})
    d0, d1 = result["states"]["d0"], result["states"]["d1"]
    # spec defaults only
    assert d0 == {"plain": 5, "copied": -7 + 3 + 2, "gscale": 3, "gtable": 7 + 100, "dense": [1, 2, 3, 0],
                  "sparse": [0, 11, 0, 0, 44], "nested": {"a": 1, "inner": {"b": 2.5, "c": [-1, -2]}},
                  "pt": {"x": 0, "y": 2}, "pts": [{"u": 9}, {"u": 9}]}
    # <P> and <S> merged over the defaults, member by member
    assert d1["plain"] == 6 and d1["copied"] == 100 + 3 + 2
    assert d1["dense"] == [9, 2, 3, 0]
    assert d1["nested"] == {"a": 1, "inner": {"b": 2.5, "c": [5, -2]}}
    assert d1["pt"] == {"x": 4, "y": 2}


def test_graph_properties_merge_instance_values_over_defaults() -> None:
    app = load(VALUES)
    props = Packer(app.graph_type.properties).unpack(app.instance.graph_properties)
    assert props == {"scale": 3, "offset": 0.5, "table": [7, 8, 100]}


def test_typedefs_are_kept_by_name() -> None:
    gt = load(VALUES).graph_type
    assert [name for name, _ in gt.typedefs] == ["weight_t", "point_t"]
    w2 = gt.device_type("cell").properties.field("w2")
    assert w2 is not None and w2.type.cname == "weight_t" and w2.type.default == 3


@pytest.mark.parametrize("old, new, words", [
    ('<Default>"1": 11, "4": 44</Default>', '<Default>"1": 11, "5": 44</Default>', ["index 5", "length 5"]),
    ("<Default>[1, 2, 3]</Default>", "<Default>[1, 2, 3, 4, 5]</Default>", ["5 values", "length 4"]),
    ('"plain": 6,', '"plain": -1,', ["plain", "out of range"]),
    ('"pt": {"x": 4}', '"pt": {"z": 4}', ["pt.z", "no such member"]),
])
def test_bad_values_are_named(tmp_path: Path, old: str, new: str, words: list[str]) -> None:
    with pytest.raises(GraphError) as info:
        load(v3_variant("values.xml", old, new, tmp_path))
    assert info.value.line is not None
    for w in words:
        assert w in str(info.value)
