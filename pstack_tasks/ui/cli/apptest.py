"""``pstack test``: push-button testing of applications over the whole fleet (docs/testing.md).

Every ``X.xml`` with a checker file ``X.py`` (or ``checks/X.py``) runs on every engine type online
(or each ``--engine``), in one region and in ``--splits`` seeded random region splits, and every
check is applied to every result.  On the fleet of ``PSTACK_REDIS_URL``, or without it on the
embedded stack, as ``pstack run`` does.  Exit 0 only if every check passed, 1 if any failed,
2 on a usage error (no applications, an engine type that is not there).
"""
from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from pstack_tasks.config import settings
from pstack_tasks.exceptions import ConfigurationError
from pstack_tasks.ui.cli import exit_status
from pstack_tasks.ui.cli.common import configure_logging, friendly_errors

if TYPE_CHECKING:
    from pstack_tasks.fleet.app_runs import CaseResult, PreparedApp

#: where ``pstack test`` looks without arguments: ./apps if it exists, else the current directory
DEFAULT_DIR = "apps"


def _usage(message: str) -> NoReturn:
    """A usage error as one line (click's own takes four) and exit status 2."""
    click.echo(f"pstack test: error: {message}", err=True)
    sys.exit(exit_status.USAGE)


def default_paths() -> list[str]:
    return [DEFAULT_DIR] if Path(DEFAULT_DIR).is_dir() else ["."]


@click.command("test", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("-e", "--engine", "engines", multiple=True,
              help="Engine type to test on (repeatable; default: every type online, dummy excepted).")
@click.option("--splits", type=click.IntRange(min=0), default=2, show_default=True,
              help="Random region splits besides one region: of 2, 3, ... regions.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random region splits.")
@click.option("-k", "keyword", default=None, metavar="TEXT", help="Only apps whose name contains TEXT (any case).")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Cases run at once (within the fleet's slots).")
@click.option("--junit", type=click.Path(dir_okay=False), default=None, help="Write JUnit XML to this file.")
@click.option("--timeout", type=click.FloatRange(min=1), default=600.0, show_default=True,
              help="Seconds a case may run before it is killed and failed.")
@click.option("--slots", type=click.IntRange(min=1), default=None,
              help="Embedded stack only: slots per engine type (default: jobs x the largest split).")
@click.option("-d", "--debug", is_flag=True, help="Show tracebacks and debug logging.")
@friendly_errors("pstack")
def test(paths: tuple[str, ...], engines: tuple[str, ...], splits: int, seed: int, keyword: str | None,
         jobs: int, junit: str | None, timeout: float, slots: int | None, debug: bool) -> None:
    """Run every application under test in PATHS (directories, xml or checker files) and check it.

    An application X.xml is under test when X.py (or checks/X.py) beside it holds checks:
    functions taking the result (and optionally the application) that assert.  One row per
    app x engine x split, then one line per failure and a summary.
    """
    configure_logging(debug)
    from pstack_tasks.fleet.app_pairs import find_apps, select
    from pstack_tasks.fleet.app_runs import prepare
    begin = time.monotonic()
    where = list(paths) or default_paths()
    try:
        pairs = select(find_apps(where), keyword)
    except ConfigurationError as e:
        _usage(str(e))
    if not pairs:
        _usage(f"no applications to test in {', '.join(where)}" + (f" matching -k {keyword!r}" if keyword else "")
               + " (an application X.xml needs a checker file X.py or checks/X.py beside it)")
    apps = [prepare(p) for p in pairs]
    largest = max((min(splits + 1, len(a.view)) for a in apps if a.view is not None), default=1)
    if settings().redis_url:
        results = _on_fleet(apps, list(dict.fromkeys(engines)), splits, seed, jobs, timeout)
    else:
        kinds = list(dict.fromkeys(engines)) or [settings().engine]
        _check_installed(kinds)
        from pstack_tasks.worker.local import LocalStack
        n = slots or jobs * largest
        click.echo(f"pstack test: embedded stack ({', '.join(kinds)} x {n} slots)", err=True)
        with LocalStack(kinds, n):
            results = _run(apps, kinds, splits, seed, jobs, timeout, {k: n for k in kinds})
    _report(results, time.monotonic() - begin, junit)


def _check_installed(kinds: Sequence[str]) -> None:
    from pstack_tasks import engine as registry
    for kind in kinds:
        try:
            registry.load(kind)
        except ConfigurationError as e:
            _usage(f"--engine {kind}: {e}")


def _on_fleet(apps: list[PreparedApp], engines: list[str], splits: int, seed: int, jobs: int,
              timeout: float) -> list[CaseResult]:
    from pstack_tasks.fleet.app_runs import NOT_SIMULATORS, online_engines
    online = online_engines()
    for kind in engines:
        if kind not in online:
            _usage(f"--engine {kind}: no engine worker of that type is online (online: "
                   f"{', '.join(sorted(online)) or 'none'}); start one: pstack worker --engine {kind}")
    kinds = engines or sorted(set(online) - NOT_SIMULATORS)
    if not kinds:
        raise ConfigurationError("no engine worker that runs applications is online on the fleet of "
                                 "PSTACK_REDIS_URL (start one: pstack worker --engine psim)")
    click.echo(f"pstack test: the fleet of PSTACK_REDIS_URL ({', '.join(f'{k} x {online[k]} slots' for k in kinds)})",
               err=True)
    return _run(apps, kinds, splits, seed, jobs, timeout, online)


def _run(apps: list[PreparedApp], kinds: list[str], splits: int, seed: int, jobs: int, timeout: float,
         capacity: dict[str, int]) -> list[CaseResult]:
    from pstack_tasks.fleet.app_runs import plan, run_cases
    return run_cases(plan(apps, kinds, splits, seed), jobs, capacity, timeout)


def _report(results: list[CaseResult], seconds: float, junit: str | None) -> None:
    from pstack_tasks.ui.app_report import failure_lines, report_table, summary
    from pstack_tasks.ui.tables import echo
    echo(report_table(results))
    for line in failure_lines(results):
        click.echo(line)
    if junit:
        from pstack_tasks.ui.junit import write_junit
        try:
            write_junit(junit, results, seconds)
        except OSError as e:
            raise ConfigurationError(f"--junit {junit}: cannot write: {e.strerror}") from None
    click.echo(summary(results, seconds))
    if not all(r.passed for r in results):
        sys.exit(exit_status.FAILED)


__all__ = ["test", "default_paths", "DEFAULT_DIR"]
