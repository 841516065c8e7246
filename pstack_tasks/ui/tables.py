"""The one table renderer of the terminal views: columns (:mod:`.columns`) drawn with rich.

Every table — ``pstack ps``/``engines``, pcli's ``ps()``/``engines()``/``help()``/``unit()``, and
``top`` — is a :class:`rich.table.Table` built by :func:`table` and shown three ways: coloured for
a terminal (:func:`echo`, :func:`ansi_text`), or as plain text when the output is a file or a
pipe (:func:`plain_text`: no escape codes, no width limit, so lines stay one row each and
``grep``/``awk`` work on them).
"""
from __future__ import annotations

import io
import shutil
import sys
from collections.abc import Iterable, Sequence
from typing import TextIO

from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from pstack_tasks.ui.columns import ENGINE_COLUMNS, PROCESS_COLUMNS, Column, Row, with_share

#: the width plain text is laid out in: wide enough that no row wraps
PLAIN_WIDTH = 2000


def table(columns: Sequence[Column], rows: Iterable[Row], one_line: bool = False) -> Table:
    """A borderless table, columns two spaces apart, headers bold, cells coloured by their column.

    When the width is short, free-text columns give way first: their cells wrap, or with
    ``one_line`` (top: one screen line per row) are cut with an ellipsis.
    """
    out = Table(box=None, pad_edge=False, padding=(0, 1), header_style="bold", show_edge=False)
    for c in columns:
        out.add_column(c.header, justify=c.justify, no_wrap=not c.free, min_width=len(c.header) if c.free else None)
    if one_line:
        rows = list(rows)
        if rows:
            out.add_row(*(_column_cell(c, rows) for c in columns))
        return out
    for row in rows:
        out.add_row(*(Text(c.text(row), style=c.style(row) if c.style else "", no_wrap=not c.free, overflow="fold")
                      for c in columns))
    return out


def _column_cell(column: Column, rows: Sequence[Row]) -> Text:
    """A whole column as one cell, a line per row: rich lays out 12 cells instead of 12 per row,
    which keeps a 50-line screen of top near 15 ms of CPU (a cell per value costs two to four times as much)."""
    cell = Text(no_wrap=True, overflow="ellipsis", justify=column.justify)
    for i, row in enumerate(rows):
        if i:
            cell.append("\n")
        cell.append(column.text(row), style=column.style(row) if column.style else "")
    return cell


def process_table(procs: Iterable[Row], fleet: Iterable[Row] = (), one_line: bool = False,
                  columns: Sequence[Column] = PROCESS_COLUMNS) -> Table:
    """``ps()`` as a table; ``fleet`` (the rows of ``engines()``) gives the SHARE column its total."""
    return table(columns, with_share(procs, fleet), one_line)


def engine_table(fleet: Iterable[Row], one_line: bool = False) -> Table:
    """``engines()`` as a table: one row per engine worker."""
    return table(ENGINE_COLUMNS, fleet, one_line)


def _console(width: int, colour: bool) -> Console:
    """A console that writes to memory: ANSI colours (unless NO_COLOR is set) or none at all."""
    return Console(file=io.StringIO(), width=width, force_terminal=colour, color_system="standard" if colour else None,
                   highlight=False, markup=False, emoji=False, legacy_windows=False)


def plain_text(view: RenderableType, width: int = PLAIN_WIDTH) -> str:
    """The view as text without escape codes, each line without trailing blanks."""
    console = _console(width, colour=False)
    with console.capture() as captured:
        console.print(view)
    return "\n".join(line.rstrip() for line in captured.get().splitlines())


def ansi_text(view: RenderableType, width: int | None = None) -> str:
    """The view with ANSI colour codes, laid out for ``width`` columns (default: the terminal's)."""
    console = _console(width or shutil.get_terminal_size().columns, colour=True)
    with console.capture() as captured:
        console.print(view)
    return captured.get().rstrip("\n")


def echo(view: RenderableType, file: TextIO | None = None) -> None:
    """Print the view: coloured and fitted to the terminal when ``file`` is one, else plain text."""
    out = file or sys.stdout
    if out.isatty():
        Console(file=out, highlight=False, markup=False, emoji=False).print(view)
    else:
        out.write(plain_text(view) + "\n")
