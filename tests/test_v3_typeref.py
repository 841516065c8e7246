"""v3 GraphTypeReference: the graph type from another file, or from the same file."""
from __future__ import annotations

from pathlib import Path

import pytest

from pstack_tasks.exceptions import GraphError
from pstack_tasks.graph.loader import load
from pstack_tasks.native.simulate import psim
from support.apps import V3_DATA


def test_graph_type_from_another_file() -> None:
    result = psim(V3_DATA / "typeref_inst.xml", options={"quiet": True})
    assert result["states"] == {"a": {"y": 42}, "b": {"y": 8}}
    assert (result["metrics"]["Exit reason"], result["metrics"]["Exit code"]) == ("handler_exit", 0)


def test_reference_to_a_graph_type_in_the_same_file(tmp_path: Path) -> None:
    type_text = (V3_DATA / "typeref_type.xml").read_text()
    inst_text = (V3_DATA / "typeref_inst.xml").read_text()
    body = type_text[type_text.index("<GraphType "):type_text.index("</Graphs>")]
    text = inst_text.replace('src="typeref_type.xml"', "").replace("<GraphInstance", body + "<GraphInstance")
    path = tmp_path / "same.xml"
    path.write_text(text)
    assert load(path).graph_type.id == "referenced"


@pytest.mark.parametrize("old, new, words", [
    ('id="referenced" src', 'id="other" src', ["has no <GraphType id='other'>", "typeref_type.xml"]),
    ('src="typeref_type.xml"', 'src="missing.xml"', ["no such file", "missing.xml"]),
])
def test_bad_references_are_named(tmp_path: Path, old: str, new: str, words: list[str]) -> None:
    (tmp_path / "typeref_type.xml").write_text((V3_DATA / "typeref_type.xml").read_text())
    path = tmp_path / "inst.xml"
    path.write_text((V3_DATA / "typeref_inst.xml").read_text().replace(old, new))
    with pytest.raises(GraphError) as info:
        load(path)
    assert info.value.file == str(path) and info.value.line == 3
    for w in words:
        assert w in str(info.value)


def test_errors_in_the_referenced_type_name_that_file(tmp_path: Path) -> None:
    text = (V3_DATA / "typeref_type.xml").read_text()
    (tmp_path / "typeref_type.xml").write_text(text.replace('type="uint32_t"/></Properties>',
                                                            'type="bogus"/></Properties>'))
    path = tmp_path / "inst.xml"
    path.write_text((V3_DATA / "typeref_inst.xml").read_text())
    with pytest.raises(GraphError, match="unsupported type 'bogus'") as info:
        load(path)
    assert info.value.file == str(tmp_path / "typeref_type.xml")
