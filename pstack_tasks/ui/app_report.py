"""What ``pstack test`` prints: one row per app x engine x split, each failure in one line, a summary.

The table is drawn by the one renderer (:mod:`pstack_tasks.ui.tables`): coloured on a terminal,
plain text (one line per row) otherwise.  Every failure is also one line of its own naming the
check, app, engine and split, so a CI log can be grepped for ``FAIL``.
"""
from __future__ import annotations

import json
from collections.abc import Sequence

from rich.table import Table

from pstack_tasks.fleet.app_runs import CaseResult
from pstack_tasks.ui.columns import Column, Row, field
from pstack_tasks.ui.tables import table

RESULT_STYLES = {"PASS": "green", "FAIL": "bold red", "ERROR": "bold red"}


def verdict(r: CaseResult) -> str:
    """PASS, FAIL (a check failed) or ERROR (nothing to check: the run or the checker file failed)."""
    if r.error is not None:
        return "ERROR"
    return "PASS" if r.passed else "FAIL"


def split_text(r: CaseResult) -> str:
    """The split as a reader can rerun it: its region count and region map."""
    split = r.case.split
    if split.regions <= 1:
        return "1 region"
    return f"{split.regions} regions, rmap {json.dumps(dict(split.rmap), sort_keys=True)}"


def detail(r: CaseResult) -> str:
    """Why a case did not pass: the error, or each failing check's docstring and message."""
    if r.error is not None:
        return r.error
    return "; ".join(f"{o.doc}: {o.message}" for o in r.failures)


def row(r: CaseResult) -> dict[str, object]:
    return {"app": r.case.app.pair.name, "engine": r.case.engine,
            "regions": r.case.split.regions or "-", "result": verdict(r),
            "checks": " ".join("PASS" if o.passed else "FAIL" for o in r.outcomes) or "-",
            "run": f"{r.run_seconds:.2f}s" if r.run_seconds else "-",
            "check": f"{r.check_seconds * 1000:.1f}ms" if r.outcomes else "-", "detail": detail(r)}


def _style(r: Row) -> str:
    return RESULT_STYLES.get(str(r.get("result")), "")


COLUMNS: tuple[Column, ...] = (
    Column("APP", field("app")),
    Column("ENGINE", field("engine")),
    Column("REGIONS", field("regions"), "right"),
    Column("RESULT", field("result"), style=_style),
    Column("CHECKS", field("checks"), style=_style),
    Column("RUN", field("run"), "right"),
    Column("CHECK", field("check"), "right"),
    Column("DETAIL", field("detail", ""), free=True),
)


def report_table(results: Sequence[CaseResult]) -> Table:
    """The results as one table, a row per case."""
    return table(COLUMNS, [row(r) for r in results])


def failure_lines(results: Sequence[CaseResult]) -> list[str]:
    """One line per failing check (or failed case), naming check, app, engine and split."""
    lines = []
    for r in results:
        where = f"{r.case.id} ({r.case.engine}, {split_text(r)})" if r.case.split.regions else r.case.app.pair.name
        if r.error is not None:
            lines.append(f"ERROR {where}: {r.error}")
        lines += [f"FAIL {where}: {o.doc}: {o.message}" for o in r.failures]
    return lines


def summary(results: Sequence[CaseResult], seconds: float) -> str:
    """``pstack test: 17 passed, 1 failed, 0 errors (6 apps, engines psim) in 12.3 s``."""
    counts = {v: sum(verdict(r) == v for r in results) for v in ("PASS", "FAIL", "ERROR")}
    apps = len({r.case.app.pair.xml for r in results})
    engines = sorted({r.case.engine for r in results} - {"-"})
    return (f"pstack test: {counts['PASS']} passed, {counts['FAIL']} failed, {counts['ERROR']} errors "
            f"({apps} apps, engines {', '.join(engines) or '-'}) in {seconds:.1f} s")
