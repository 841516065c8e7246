"""``pstack batch``: run an application over a grid of overrides (``pstack batch APP --set ...``),
and ``show``, ``wait``, ``kill`` and ``plot`` a batch; ``pstack batches`` lists them
(docs/batches.md).

``pstack batch APP ...`` is ``pstack batch start APP ...``: a first argument that is not a
subcommand's name is the application.
"""
from __future__ import annotations

import json
import os
import sys
from contextlib import ExitStack
from typing import Any

import click

from pstack_tasks.config import settings
from pstack_tasks.exceptions import ConfigurationError
from pstack_tasks.ui import extras
from pstack_tasks.ui.cli.common import configure_logging, friendly_errors, parse_options, parse_rmap
from pstack_tasks.ui.cli.exit_status import FAILED

CONTEXT = {"help_option_names": ["-h", "--help"]}


class BatchGroup(click.Group):
    """A group whose default subcommand is ``start``: ``pstack batch APP`` starts a batch."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["start", *args]
        return super().parse_args(ctx, args)


@click.group(cls=BatchGroup, context_settings=CONTEXT)
def batch() -> None:
    """Run APP over a grid of overrides: pstack batch APP --set type:cell.limit=10,20,40 [--runs N]."""


@batch.command(context_settings=CONTEXT)
@click.argument("app", type=click.Path(dir_okay=False))
@click.option("--set", "sets", multiple=True, metavar="KEY=V1,V2,...",
              help="A grid key and its values: graph:NAME, type:TYPE.NAME, device:ID.NAME or state:TYPE.NAME.")
@click.option("--runs", type=click.IntRange(min=1), default=1, show_default=True, help="Runs of each grid point.")
@click.option("--seeds", default=None, metavar="1..8|1,5,9", help="Values of the graph property 'seed'.")
@click.option("--rmap", default=None, help='Region map of every run, JSON text or a file: {"n1": 1}.')
@click.option("--regions", "nregions", type=int, default=None, metavar="K", help="Split every run into K regions.")
@click.option("-e", "--engine", default=None, help="Engine type (default PSTACK_ENGINE, psim).")
@click.option("--group", default=None, help="The worker group every run asks for (docs/batches.md).")
@click.option("--option", "extra", multiple=True, metavar="KEY=JSON", help="An engine option for every run.")
@click.option("--async", "--detach", "async_", is_flag=True, help="Print the batch id once every run is queued.")
@click.option("--out", default=None, metavar="FILE", help="Write the results: .csv or .jsonl.")
@click.option("--metric", "metrics", multiple=True, help="Another metric to show per run (repeatable).")
@click.option("--slots", type=click.IntRange(min=1), default=None, help="Embedded mode: local engine slots.")
@click.option("--progress/--no-progress", "show_progress", default=None,
              help="A live progress bar on stderr (default: when stderr is a terminal).")
@click.option("-d", "--debug", is_flag=True, help="Show tracebacks and debug logging.")
@friendly_errors("pstack")
def start(app: str, sets: tuple[str, ...], runs: int, seeds: str | None, rmap: str | None, nregions: int | None,
          engine: str | None, group: str | None, extra: tuple[str, ...], async_: bool, out: str | None,
          metrics: tuple[str, ...], slots: int | None, show_progress: bool | None, debug: bool) -> None:
    """Run APP once per combination of the --set values, per seed, --runs times; each run a process."""
    from pstack_tasks.fleet.batches.grid import grid_from_sets, parse_seeds
    from pstack_tasks.fleet.batches.table import file_format
    configure_logging(debug)
    if out:
        file_format(out)  # a wrong extension is refused before anything runs
    grid = grid_from_sets(sets)
    seed_list = parse_seeds(seeds) if seeds else None
    kwargs: dict[str, Any] = dict(grid=grid, runs=runs, seeds=seed_list, rmap=parse_rmap(rmap) or None,
                                  engine=engine or settings().engine, group=group, options=parse_options(extra),
                                  regions=nregions)
    with ExitStack() as stack:
        if not settings().redis_url:
            if async_:
                raise ConfigurationError("--async needs a fleet (PSTACK_REDIS_URL): the embedded stack ends with "
                                         "the command")
            from pstack_tasks.worker.local import LocalStack
            stack.enter_context(LocalStack(kwargs["engine"], slots or os.cpu_count() or 1))
        from pstack_tasks.fleet.batches import batch as start_batch
        handle = start_batch(app, wait=False, **kwargs)
        if async_:
            click.echo(handle.id)
            return
        click.echo(f"pstack: batch {handle.id}", err=True)
        _finish(handle.id, out, metrics, show_progress, None)


def _finish(batch_id: int, out: str | None, metrics: tuple[str, ...], show_progress: bool | None,
            timeout: float | None) -> None:
    """Wait for the batch with its progress bar, print its runs, write ``out``; exit 1 unless every
    run ended Done.  Ctrl-C while waiting leaves the batch running and says so."""
    from pstack_tasks.fleet.batches import Batch
    from pstack_tasks.ui.batch_view import BatchProgress, run_table
    from pstack_tasks.ui.tables import echo
    handle = Batch(batch_id)
    with ExitStack() as stack:
        watcher = None
        if show_progress or (show_progress is None and sys.stderr.isatty() and not extras.missing()):
            watcher = stack.enter_context(BatchProgress()).update
        try:
            view = handle.wait(timeout, watcher)
        except KeyboardInterrupt:
            raise KeyboardInterrupt(f"batch {batch_id} goes on; pstack batch kill {batch_id} stops it") from None
    echo(run_table(view, metrics))
    if out:
        from pstack_tasks.fleet.batches.table import write
        click.echo(f"pstack: wrote {write(view, out)}", err=True)
    if view.state != "Done":
        click.echo(f"pstack: batch {batch_id} {view.state.lower()}: {_not_done(view)}", err=True)
        sys.exit(FAILED)


def _not_done(view: Any) -> str:
    c = view.counts
    return ", ".join(f"{c[s]} {s.lower()}" for s in ("Failed", "Killed", "Expired") if c[s]) or "stopped"


@batch.command(context_settings=CONTEXT)
@click.argument("batch_id", type=int)
@click.option("--metric", "metrics", multiple=True, help="Another metric to show per run (repeatable).")
@click.option("--out", default=None, metavar="FILE", help="Write the results: .csv or .jsonl.")
@click.option("-r", "--result", "as_json", is_flag=True, help="Print the summary and rows as JSON.")
@click.option("-d", "--debug", is_flag=True)
@friendly_errors("pstack")
def show(batch_id: int, metrics: tuple[str, ...], out: str | None, as_json: bool, debug: bool) -> None:
    """One row per run of a batch: parameters, run, seed, pid, state, delivered, exit code, time."""
    from pstack_tasks.fleet.batches import outcomes, table
    from pstack_tasks.ui.batch_view import describe, run_table
    from pstack_tasks.ui.tables import echo
    view = outcomes.view(batch_id)
    if as_json:
        click.echo(json.dumps({"batch": view.summary(), "rows": table.rows(view)}))
    else:
        click.echo(describe(view))
        echo(run_table(view, metrics))
    if out:
        click.echo(f"pstack: wrote {table.write(view, out)}", err=True)


@batch.command(context_settings=CONTEXT)
@click.argument("batch_id", type=int)
@click.option("--out", default=None, metavar="FILE", help="Write the results when it ends: .csv or .jsonl.")
@click.option("--metric", "metrics", multiple=True, help="Another metric to show per run (repeatable).")
@click.option("--timeout", type=click.FloatRange(min=0), default=None, help="Give up after S seconds (exit 1).")
@click.option("--progress/--no-progress", "show_progress", default=None)
@click.option("-d", "--debug", is_flag=True)
@friendly_errors("pstack")
def wait(batch_id: int, out: str | None, metrics: tuple[str, ...], timeout: float | None,
         show_progress: bool | None, debug: bool) -> None:
    """Wait for a batch to end, with a progress bar; then its runs as ``show`` prints them."""
    from pstack_tasks.fleet.batches.table import file_format
    if out:
        file_format(out)
    try:
        _finish(batch_id, out, metrics, show_progress, timeout)
    except TimeoutError as e:
        click.echo(f"pstack: error: {e}", err=True)
        sys.exit(FAILED)


@batch.command(context_settings=CONTEXT)
@click.argument("batch_id", type=int)
@click.option("-d", "--debug", is_flag=True)
@friendly_errors("pstack")
def kill(batch_id: int, debug: bool) -> None:
    """Kill a batch: its running runs are killed, its waiting ones dropped, no more are submitted."""
    from pstack_tasks.fleet.batches import Batch
    from pstack_tasks.ui.batch_view import describe
    click.echo(describe(Batch(batch_id).kill()))


@batch.command(context_settings=CONTEXT)
@click.argument("batch_id", type=int)
@click.option("--x", "x", required=True, metavar="KEY", help="The grid key along the x axis (or run, seed).")
@click.option("--y", "y", default="Delivered messages", show_default=True, metavar="METRIC", help="The metric.")
@click.option("--out", default=None, metavar="FILE", help="A .png or .svg file (default batch-ID.png).")
@click.option("-d", "--debug", is_flag=True)
@friendly_errors("pstack")
def plot(batch_id: int, x: str, y: str, out: str | None, debug: bool) -> None:
    """Plot a metric against a grid key: the mean over the runs, with their spread."""
    from pstack_tasks.ui.batch_plot import plot_batch
    click.echo(plot_batch(batch_id, x, y, out))


@click.command(context_settings=CONTEXT)
@click.option("-n", "--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("-r", "--result", "as_json", is_flag=True, help="Print JSON.")
@click.option("-d", "--debug", is_flag=True)
@friendly_errors("pstack")
def batches(limit: int, as_json: bool, debug: bool) -> None:
    """List batches, newest first: state, owner, group, runs done / failed / running / waiting."""
    from pstack_tasks.fleet.batches import batches as list_batches
    found = list_batches(limit)
    if as_json:
        click.echo(json.dumps(found))
        return
    from pstack_tasks.ui.batch_view import batch_table
    from pstack_tasks.ui.tables import echo
    echo(batch_table(found))
