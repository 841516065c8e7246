"""Externals and supervisors are recognised and refused with file, line and element."""
from __future__ import annotations

from pathlib import Path

import pytest

from pstack_tasks.exceptions import GraphError
from pstack_tasks.graph.loader import load
from support.apps import V3_DATA, line_of, v3_variant


@pytest.mark.parametrize("name, element, words", [
    ("external.xml", "<ExternalType", ["<ExternalType> 'outsider'", "external devices", "not supported yet"]),
    ("supervisor.xml", "<SupervisorType", ["<SupervisorType> 'boss'", "supervisors are not supported yet"]),
])
def test_refused_with_file_line_and_element(name: str, element: str, words: list[str]) -> None:
    path = V3_DATA / name
    with pytest.raises(GraphError) as info:
        load(path)
    assert (info.value.file, info.value.line) == (str(path), line_of(path, element))
    for w in words:
        assert w in str(info.value)


def test_an_ext_instance_is_refused_by_name(tmp_path: Path) -> None:
    # Without the ExternalType the ExtI itself is what is refused.
    path = v3_variant("external.xml",
                      '<ExternalType id="outsider">\n        <OutputPin name="out" messageTypeId="m"/>\n'
                      "      </ExternalType>", "", tmp_path)
    with pytest.raises(GraphError, match="<ExtI> 'x': external devices are not supported yet") as info:
        load(path)
    assert info.value.line == line_of(path, "<ExtI")
