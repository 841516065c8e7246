"""How pcli shows what the built-ins return: still plain lists and dicts, printed as tables.

ptpython prints a value through its ``__pt_repr__`` when it has one (here: the rich view as
ANSI text, states in colour, fitted to the terminal); ``print(x)`` uses ``__str__`` (the same
view as plain text).  The value stays a ``list``/``dict`` that code can index, filter and
serialise (``ps()[0]["pid"]``, ``json.dumps(ps())``).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from prompt_toolkit.formatted_text import ANSI
from rich.console import RenderableType
from rich.text import Text

from pstack_tasks.native.results import format_text
from pstack_tasks.ui.tables import ansi_text, plain_text

#: states shown before a result is cut short (the value itself keeps them all)
MAX_STATES = 40


class _Shown:
    """Prints as its view: plain text through ``print``, coloured for the terminal in ptpython."""

    view: RenderableType

    def __str__(self) -> str:
        return plain_text(self.view)

    def __pt_repr__(self) -> ANSI:
        return ANSI(ansi_text(self.view))


class Table(_Shown, list):  # type: ignore[type-arg]
    """Rows (usually dicts) with the view that shows them (a rich table, and lines around it)."""

    def __init__(self, rows: Iterable[Any], view: RenderableType) -> None:
        super().__init__(rows)
        self.view = view


class Record(_Shown, dict):  # type: ignore[type-arg]
    """A dict with the view that shows it."""

    def __init__(self, data: Mapping[str, Any], view: RenderableType) -> None:
        super().__init__(data)
        self.view = view


def result_record(result: Mapping[str, Any]) -> Record:
    """A process result shown as pstack printed it (metrics, then states), cut to MAX_STATES."""
    lines = list(format_text({"metrics": result.get("metrics", {}), "states": {}}))
    states = result.get("states", {})
    for name in list(states)[:MAX_STATES]:
        lines += list(format_text({"states": {name: states[name]}}))[2:]
    if len(states) > MAX_STATES:
        lines.append(f"... {len(states) - MAX_STATES} more states (the value holds them all: _['states'])")
    if "pid" in result:
        lines.append(f"(process {result['pid']}; keys: {', '.join(result)})")
    return Record(result, Text("\n".join(lines)))
