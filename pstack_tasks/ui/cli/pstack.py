"""``pstack``: run processes on the worker fleet, list and kill them, start workers.

With ``PSTACK_REDIS_URL`` unset, ``pstack run`` needs no servers: it starts a private
redis-server and local workers, runs, prints the result and tears everything down.
"""
from __future__ import annotations

import json
import os
import socket
import sys
from contextlib import ExitStack
from typing import Any

import click

from pstack_tasks.config import settings
from pstack_tasks.exceptions import ConfigurationError
from pstack_tasks.graph.partition import combine, split_line
from pstack_tasks.native.results import format_text
from pstack_tasks.ui import extras
from pstack_tasks.ui.cli import apptest, batch, debugger, deploy, doctor, live, loadtest, persist
from pstack_tasks.ui.cli.common import (
    configure_logging,
    friendly_errors,
    parse_options,
    parse_rmap,
    parse_sets,
    version_option,
)

CONTEXT = {"help_option_names": ["-h", "--help"]}


def _parse_rcon(value: str | None) -> dict[str, str]:
    if not value:
        return {}
    try:
        rcon = json.loads(value)
    except json.JSONDecodeError as e:
        raise ConfigurationError(f"--rcon is not valid JSON: {e.msg} (column {e.colno})") from None
    if not isinstance(rcon, dict) or not all(isinstance(v, str) for v in rcon.values()):
        raise ConfigurationError('--rcon must be a JSON object such as {"1": "host2"}')
    return {str(k): v for k, v in rcon.items()}


def _wants_progress(asked: bool | None, verbose: bool) -> bool:
    """--progress needs the terminal libraries; by default the line is drawn where it can be."""
    if asked is None:
        return sys.stderr.isatty() and not verbose and not extras.missing()
    if asked:
        extras.require_shell("--progress")
    return asked


@click.group(context_settings=CONTEXT)
@version_option()
def main() -> None:
    """Run POETS applications as processes on a fleet of Celery workers."""


@main.command(context_settings=CONTEXT)
@click.argument("app", type=click.Path(dir_okay=False))
@click.option("--rmap", default=None, help='Region map, JSON text or a file: {"n1": 1}. One task per region.')
@click.option("--regions", "nregions", type=int, default=None, metavar="K",
              help="Split into K regions by METIS (balanced, fewest cut edges); the cut and balance go to stderr.")
@click.option("--rcon", default=None, help='Pin regions to workers: {"1": "host2"}.')
@click.option("-e", "--engine", default=None, help="Engine type (default PSTACK_ENGINE, psim).")
@click.option("-g", "--group", default=None,
              help="The process's group (default PSTACK_GROUP): workers started with --group serve only theirs.")
@click.option("-l", "--level", type=int, default=1, show_default=True, help="handler_log level streamed by -v.")
@click.option("-v", "--verbose", is_flag=True, help="Stream '[host] Region r -> line' log lines while it runs.")
@click.option("-r", "--result", "as_json", is_flag=True, help="Print the result as one JSON document.")
@click.option("--async", "--detach", "async_", is_flag=True,
              help="Print the pid and return at once (fleet only). Without it, Ctrl-C kills the process.")
@click.option("--slots", type=click.IntRange(min=1), default=None,
              help="Embedded mode: local engine slots (default: the number of regions).")
@click.option("--max-steps", type=click.IntRange(min=0), default=0, help="Stop after N sends (0: no limit).")
@click.option("--time-limit", type=click.FloatRange(min=0), default=0.0, help="Stop after S seconds (0: no limit).")
@click.option("--option", "extra", multiple=True, metavar="KEY=JSON", help="Another engine option, e.g. seconds=2.")
@click.option("--set", "sets", multiple=True, metavar="KEY=V",
              help="Override a value without recompiling: graph:NAME=V, type:TYPE.NAME=V, device:ID.NAME=V, "
              "state:TYPE.NAME=V (docs/batches.md).")
@click.option("--checkpoint-every", type=click.FloatRange(min=0), default=0.0, metavar="S",
              help="Checkpoint every S seconds; it then survives losing a worker (docs/persistence.md).")
@click.option("--progress/--no-progress", "show_progress", default=None,
              help="A live line on stderr: state, messages delivered, elapsed (default: when stderr is a terminal).")
@click.option("-d", "--debug", is_flag=True, help="Show tracebacks and debug logging.")
@friendly_errors("pstack")
def run(app: str, rmap: str | None, nregions: int | None, rcon: str | None, engine: str | None,
        group: str | None, level: int, verbose: bool, as_json: bool, async_: bool, slots: int | None,
        max_steps: int, time_limit: float, extra: tuple[str, ...], sets: tuple[str, ...], checkpoint_every: float,
        show_progress: bool | None, debug: bool) -> None:
    """Run APP as a process and print its result (pstack's output, or JSON with -r)."""
    configure_logging(debug)
    regions = parse_rmap(rmap)
    combine(regions, nregions)  # both, or a bad K: refused before any stack starts
    options: dict[str, Any] = {}
    if max_steps:
        options["max_steps"] = max_steps
    if time_limit:
        options["time_limit"] = time_limit
    options.update(parse_options(extra))
    engine = engine or settings().engine
    kwargs: dict[str, Any] = dict(rmap=regions, rcon=_parse_rcon(rcon), level=level, verbose=verbose,
                                  engine=engine, options=options, regions=nregions, group=group,
                                  overrides=parse_sets(sets) or None, checkpoint_every=checkpoint_every)
    with ExitStack() as stack:
        if not async_ and _wants_progress(show_progress, verbose):
            from pstack_tasks.ui.progress import ProgressLine
            kwargs["progress"] = stack.enter_context(ProgressLine()).update
        if settings().redis_url:
            from pstack_tasks.fleet.client import run as run_process
            outcome = run_process(app, async_=async_, kill_on_interrupt=True, **kwargs)
        else:
            if async_:
                raise ConfigurationError("--async needs a fleet (PSTACK_REDIS_URL): "
                                         "the embedded stack ends with the command")
            from pstack_tasks.worker.local import LocalStack
            with LocalStack(engine, slots or nregions or len(set(regions.values()) | {0})):  # workers start first
                from pstack_tasks.fleet.client import run as run_process  # then the client's imports
                outcome = run_process(app, kill_on_interrupt=True, **kwargs)
    if async_:
        click.echo(outcome.pid)  # type: ignore[union-attr]
        return
    result: dict[str, Any] = outcome  # type: ignore[assignment]
    if "partition" in result:
        click.echo(f"pstack: {split_line(result['partition'])}", err=True)
    if as_json:
        click.echo(json.dumps(result))
    else:
        for line in format_text(result):
            click.echo(line)


@main.command(context_settings=CONTEXT)
@click.option("-u", "--user", default=None, help="Only this user's processes (default: every user's).")
@click.option("-m", "--mine", is_flag=True, help="Only my processes (PSTACK_USER, else the login name).")
@click.option("-g", "--group", default=None, help="Only processes of this worker group (docs/fleet.md).")
@click.option("-n", "--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("-r", "--result", "as_json", is_flag=True, help="Print JSON.")
@click.option("-d", "--debug", is_flag=True)
@friendly_errors("pstack")
def ps(user: str | None, mine: bool, group: str | None, limit: int, as_json: bool, debug: bool) -> None:
    """List processes of every user, newest first, with their owner (USER) and how they ended (REASON)."""
    from pstack_tasks.fleet.client import engines as list_engines
    from pstack_tasks.fleet.client import ps as list_processes
    from pstack_tasks.fleet.users import current_user
    if mine and user:
        raise click.UsageError("give --user USER or --mine, not both")
    procs = list_processes(user=current_user() if mine else user, limit=limit, group=group)
    if as_json:
        click.echo(json.dumps(procs))
        return
    from pstack_tasks.ui.tables import echo, process_table
    echo(process_table(procs, list_engines()))


@main.command(context_settings=CONTEXT)
@click.argument("pids", type=int, nargs=-1, required=True)
@click.option("-d", "--debug", is_flag=True)
@friendly_errors("pstack")
def kill(pids: tuple[int, ...], debug: bool) -> None:
    """Kill processes: their engines stop everywhere; the state becomes Killed.

    Only your own processes, unless you are an admin (PSTACK_ADMINS). A refused or unknown pid
    is reported and the others are still killed; the exit status is then 1.
    """
    from pstack_tasks.exceptions import PermissionDenied, ProcessNotFound
    from pstack_tasks.fleet.client import kill as kill_process
    refused = 0
    for pid in pids:
        try:
            click.echo(f"{pid} {kill_process(pid)}")
        except (PermissionDenied, ProcessNotFound) as e:
            if debug:
                raise
            click.echo(f"pstack: error: {e}", err=True)
            refused += 1
    if refused:
        sys.exit(1)


@main.command(context_settings=CONTEXT)
@click.argument("pid", type=int)
@click.option("-d", "--debug", is_flag=True)
@friendly_errors("pstack")
def status(pid: int, debug: bool) -> None:
    """Print one process's record as JSON."""
    from pstack_tasks.fleet.client import status as process_status
    click.echo(json.dumps(process_status(pid), indent=2))


@main.command(context_settings=CONTEXT)
@click.option("-r", "--result", "as_json", is_flag=True, help="Print JSON.")
@click.option("-d", "--debug", is_flag=True)
@friendly_errors("pstack")
def engines(as_json: bool, debug: bool) -> None:
    """List the engine workers of the fleet: type, host, slots in use."""
    from pstack_tasks.fleet.client import engines as list_engines
    fleet = list_engines()
    if as_json:
        click.echo(json.dumps(fleet))
        return
    from pstack_tasks.ui.tables import echo, engine_table
    echo(engine_table(fleet))


@main.command(context_settings=CONTEXT)
@click.option("-d", "--debug", is_flag=True)
@friendly_errors("pstack")
def top(debug: bool) -> None:
    """Live view of the fleet's engines and processes, refreshed 4 times a second; q quits."""
    from pstack_tasks.fleet import store
    extras.require_shell("pstack top")
    from pstack_tasks.ui.top import run_top
    store.redis_url()  # fails clearly when PSTACK_REDIS_URL is unset
    store.ping()
    run_top()


@main.command(context_settings=CONTEXT)
@click.option("-e", "--engine", default=None, help="Engine type this worker runs (psim, dummy, ...).")
@click.option("-s", "--slots", type=click.IntRange(min=1), default=None,
              help="Regions it runs at once (default: CPU count).")
@click.option("-n", "--name", default=None, help="Host name in the fleet, for rcon pinning (default: host name).")
@click.option("-g", "--group", "groups", multiple=True, metavar="G",
              help="Serve only processes of group G (repeatable; with --user: of those groups or users).")
@click.option("-u", "--user", "users", multiple=True, metavar="U",
              help="Serve only processes of user U (repeatable). Without --group/--user: everyone's.")
@click.option("--control", is_flag=True,
              help="Run a control worker instead: reaps lost processes, serves Flower's API tasks.")
@click.option("-l", "--loglevel", default="info", show_default=True)
@click.option("-d", "--debug", is_flag=True)
@friendly_errors("pstack")
def worker(engine: str | None, slots: int | None, name: str | None, groups: tuple[str, ...],
           users: tuple[str, ...], control: bool, loglevel: str, debug: bool) -> None:
    """Start a Celery worker of the fleet (a thin wrapper over `celery worker`; see docs/fleet.md)."""
    from pstack_tasks.fleet import store
    from pstack_tasks.fleet.matching import Serving, names
    from pstack_tasks.worker.local import serving_environment, worker_command
    if not engine and not control:
        raise click.UsageError("give --engine ENGINE (an engine worker, e.g. -e psim) or --control")
    if engine and control:
        raise click.UsageError("give --engine ENGINE or --control, not both")
    serving = Serving(names(groups, "group"), names(users, "user"))
    if control and serving.restricted:
        raise click.UsageError("--group and --user restrict an engine worker; a control worker serves every process")
    if serving.restricted:  # read by the worker's membership (fleet/matching.py); else PSTACK_WORKER_* as set
        os.environ.update(serving_environment(serving))
    store.ping()  # unreachable, or a wrong password: one line now, not Celery's retries
    host = name or socket.gethostname().split(".")[0]
    if engine:
        from pstack_tasks import engine as registry
        registry.load(engine)
        _check_name_free(engine, host)
    cmd = worker_command(engine, host, slots or os.cpu_count() or 1, control, loglevel)
    if serving.restricted:
        click.echo(f"serving only {serving.text()}", err=True)
    click.echo("exec: " + " ".join(cmd[1:]), err=True)
    sys.stdout.flush()
    os.execv(cmd[0], cmd)


def _check_name_free(engine: str, host: str) -> None:
    """Refuse a name a live worker holds (the worker itself refuses it too, after waiting out a
    killed predecessor's registration)."""
    from pstack_tasks.fleet import store
    from pstack_tasks.fleet.dispatch import ledger
    with store.reporting():
        held = ledger().holder(engine, host)
    if held is not None:
        raise ConfigurationError(f"worker name {engine}@{host} is taken by a running worker ({held.get('node', '?')}, "
                                 f"pid {held.get('os_pid', '?')}): give this one another --name")


main.add_command(batch.batch)
main.add_command(batch.batches)
main.add_command(deploy.deploy)
main.add_command(doctor.doctor)
main.add_command(loadtest.loadtest)
main.add_command(apptest.test)
main.add_command(live.inspect)
main.add_command(live.inject)
main.add_command(live.draw)
main.add_command(debugger.debug)
for command in persist.COMMANDS:
    main.add_command(command)

if __name__ == "__main__":
    main()
