"""``pstack loadtest``: many processes from concurrent clients, some killed, every one accounted
for (the driver is :mod:`pstack_tasks.fleet.loadtest`, the accounting :mod:`pstack_tasks.fleet.audit`;
docs/loadtest.md).

On the fleet of ``PSTACK_REDIS_URL``, or without it on the embedded stack (a private Redis,
one local engine worker of ``--slots`` slots and a control worker), as ``pstack run`` does.
Its last line is one summary; it exits 0 only if nothing was lost, duplicated or left behind
(and nothing failed, unless ``--allow-failed``).
"""
from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING

import click

from pstack_tasks.config import settings
from pstack_tasks.graph.app_file import read_text
from pstack_tasks.ui.cli import exit_status
from pstack_tasks.ui.cli.common import configure_logging, friendly_errors, parse_rmap

if TYPE_CHECKING:
    from pstack_tasks.fleet.loadtest import LoadReport, LoadSpec


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-n", "--processes", type=click.IntRange(min=1), default=100, show_default=True,
              help="Processes to run in all.")
@click.option("-c", "--clients", type=click.IntRange(min=1), default=4, show_default=True,
              help="Concurrent clients (threads) submitting them.")
@click.option("--app", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Application file (default: pstack's ring oscillator, packaged; 40 delivered each).")
@click.option("-e", "--engine", default=None, help="Engine type (default PSTACK_ENGINE, psim).")
@click.option("--rmap", default=None, help='Region map (default for the ring oscillator: {"n1": 1}, 2 regions).')
@click.option("--kill-fraction", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Fraction of the processes (drawn at random) to kill, each as soon as it is Running.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the draw of the processes to kill.")
@click.option("--timeout", type=click.FloatRange(min=1), default=1800.0, show_default=True,
              help="Seconds the whole load may take; processes not ended by then are lost.")
@click.option("--slots", type=click.IntRange(min=1), default=4, show_default=True,
              help="Embedded stack only: engine slots of the local worker.")
@click.option("--allow-failed", is_flag=True, help="Exit 0 even if some processes failed (with a reason).")
@click.option("-d", "--debug", is_flag=True, help="Show tracebacks and debug logging.")
@friendly_errors("pstack")
def loadtest(processes: int, clients: int, app: str | None, engine: str | None, rmap: str | None,
             kill_fraction: float, seed: int, timeout: float, slots: int, allow_failed: bool, debug: bool) -> None:
    """Run N processes from C concurrent clients, kill a random fraction, and prove none was lost.

    Prints submissions/s, processes/s, latency p50/p90/p99 (submitted to ended, Done processes),
    every lost, duplicated or failed process and every leftover, then one summary line.
    """
    configure_logging(debug)
    from pstack_tasks.fleet.loadtest import LoadSpec
    from pstack_tasks.fleet.sample import RING_DELIVERED, RING_RMAP, ring_oscillator
    spec = LoadSpec(processes=processes, clients=clients, xml=app or ring_oscillator(),
                    rmap=parse_rmap(rmap) if rmap else ({} if app else dict(RING_RMAP)),
                    engine=engine or settings().engine, kill_fraction=kill_fraction, seed=seed, timeout=timeout,
                    expected_delivered=None if app else RING_DELIVERED)
    if app:
        read_text(app)  # unreadable: fail now, not once per submission
    report = _run(spec, slots)
    for line in _report_lines(report):
        click.echo(line)
    failed = bool(report.audit.failed) and not allow_failed
    if not report.passed or failed:
        sys.exit(exit_status.FAILED)


def _run(spec: LoadSpec, slots: int) -> LoadReport:
    from pstack_tasks.fleet.audit import local_engines
    from pstack_tasks.fleet.loadtest import run_load
    where = settings().redis_url
    if where:
        click.echo(f"loadtest: {_what(spec)} on the fleet of PSTACK_REDIS_URL")
        return run_load(spec)
    from pstack_tasks.worker.local import LocalStack
    click.echo(f"loadtest: {_what(spec)} on the embedded stack ({slots} {spec.engine} slots)")
    with LocalStack(spec.engine, slots):
        return run_load(spec, lambda: local_engines(os.getpid()))


def _what(spec: LoadSpec) -> str:
    kills = round(spec.processes * spec.kill_fraction)
    rmap = json.dumps(dict(spec.rmap)) if spec.rmap else "one region"
    return f"{spec.processes} processes from {spec.clients} clients, rmap {rmap}, {kills} to kill"


def _report_lines(report: LoadReport) -> list[str]:
    def p(q: float) -> str:
        value = report.percentile(q)
        return "-" if value is None else f"{value:.2f} s"
    from pstack_tasks.fleet.loadtest import summary
    lines = [f"submitted {report.spec.processes} in {report.submit_wall:.1f} s: "
             f"{report.submissions_per_s:.1f} submissions/s",
             f"ended {report.spec.processes} in {report.wall:.1f} s: {report.processes_per_s:.1f} processes/s",
             f"latency (submitted to ended, Done processes): p50 {p(0.5)}, p90 {p(0.9)}, p99 {p(0.99)}"]
    asked = sum(o.kill for o in report.outcomes)
    if asked:
        lines.append(f"kills: {asked} asked, {len(report.audit.killed)} ended Killed "
                     "(a process may end Done before its kill reaches it)")
    problems = report.audit.problems()
    lines += problems[:200]
    if len(problems) > 200:
        lines.append(f"... and {len(problems) - 200} more")
    if not report.audit.leftovers:
        lines.append("leftovers: none (slots, keys of these pids" +
                     (", engine processes on this machine)" if not settings().redis_url else ")"))
    lines.append(summary(report))
    return lines
