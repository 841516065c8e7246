"""``pstack doctor``: check a fleet before trusting it, a table row per check with the fix of
every failed one (the checks are :mod:`pstack_tasks.fleet.doctor`; docs/doctor.md).

It checks a fleet, so it needs ``PSTACK_REDIS_URL``: the embedded stack it could start instead
would be healthy by construction and say nothing about the fleet the operator means.
"""
from __future__ import annotations

import json
import sys

import click

from pstack_tasks.config import settings
from pstack_tasks.exceptions import ConfigurationError
from pstack_tasks.ui.cli import exit_status
from pstack_tasks.ui.cli.common import configure_logging, friendly_errors
from pstack_tasks.ui.columns import Column, field

STATUS_STYLES = {"OK": "green", "WARN": "yellow", "FAIL": "bold red"}

DOCTOR_COLUMNS: tuple[Column, ...] = (
    Column("CHECK", field("name")),
    Column("STATUS", field("status"), style=lambda row: STATUS_STYLES.get(str(row.get("status")), "")),
    Column("DETAIL", field("detail"), free=True),
    Column("FIX", field("fix", ""), free=True),
)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-e", "--engine", default=None, help="Engine type of the test process (default PSTACK_ENGINE, psim).")
@click.option("--timeout", type=click.FloatRange(min=1), default=60.0, show_default=True,
              help="Seconds the 2-region test process may take.")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
@click.option("-d", "--debug", is_flag=True, help="Show tracebacks and debug logging.")
@friendly_errors("pstack")
def doctor(engine: str | None, timeout: float, as_json: bool, debug: bool) -> None:
    """Check the fleet of PSTACK_REDIS_URL as an operator would; exit 0 only if every check passes.

    Redis reachable and authenticated, persistence and noeviction, clock skew, engine workers
    with slots and fresh heartbeats, a control worker, the compiler and socat on each engine
    host, and a 2-region test process end to end. Every failed row says how to fix it.
    """
    configure_logging(debug)
    url = settings().redis_url
    if not url:
        raise ConfigurationError("pstack doctor checks a fleet and needs PSTACK_REDIS_URL "
                                 "(redis://[user:password@]host:port/db of the fleet's Redis)")
    from pstack_tasks.fleet.doctor import run_checks
    checks = run_checks(url, engine, timeout)
    passed = all(c.passed for c in checks)
    if as_json:
        click.echo(json.dumps({"passed": passed, "checks": [c.as_dict() for c in checks]}))
    else:
        from pstack_tasks.ui.tables import echo, table
        echo(table(DOCTOR_COLUMNS, [c.as_dict() for c in checks]))
        failed = sum(not c.passed for c in checks)
        warned = sum(c.status == "WARN" for c in checks)
        click.echo(f"{len(checks)} checks: {len(checks) - failed - warned} ok, {warned} warnings, {failed} failed")
    if not passed:
        sys.exit(exit_status.FAILED)
