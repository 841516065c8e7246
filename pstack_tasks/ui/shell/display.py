"""How pcli shows what the built-ins return: still plain lists and dicts, printed as tables.

ptpython prints a value through its ``__pt_repr__`` when it has one; ``print(x)`` uses
``__str__``.  Both give the table, while the value stays a ``list``/``dict`` that code can
index, filter and serialise (``ps()[0]["pid"]``, ``json.dumps(ps())``).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pstack_tasks.native.results import format_text

#: states shown before a result is cut short (the value itself keeps them all)
MAX_STATES = 40


class _Shown:
    """Prints as its text lines, in ptpython (``__pt_repr__``) and through ``print``."""

    lines: list[str]

    def __str__(self) -> str:
        return "\n".join(self.lines)

    def __pt_repr__(self) -> str:
        return str(self)


class Table(_Shown, list):  # type: ignore[type-arg]
    """Rows (usually dicts) with the text lines that show them."""

    def __init__(self, rows: Iterable[Any], lines: Iterable[str]) -> None:
        super().__init__(rows)
        self.lines = list(lines)


class Record(_Shown, dict):  # type: ignore[type-arg]
    """A dict with the text lines that show it."""

    def __init__(self, data: Mapping[str, Any], lines: Iterable[str]) -> None:
        super().__init__(data)
        self.lines = list(lines)


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
    return Record(result, lines)
