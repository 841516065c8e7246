"""Externals and supervisors are recognised and refused with file, line and element."""
from __future__ import annotations

import pytest

from pstack_tasks.exceptions import GraphError
from pstack_tasks.graph.loader import load
from support.apps import V3_DATA, line_of


@pytest.mark.parametrize("name, element, words", [
    ("supervisor.xml", "<SupervisorType", ["<SupervisorType> 'boss'", "supervisors are not supported yet"]),
])
def test_refused_with_file_line_and_element(name: str, element: str, words: list[str]) -> None:
    path = V3_DATA / name
    with pytest.raises(GraphError) as info:
        load(path)
    assert (info.value.file, info.value.line) == (str(path), line_of(path, element))
    for w in words:
        assert w in str(info.value)


