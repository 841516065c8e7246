"""``pstack snapshot``, ``checkpoint``, ``checkpoints``, ``restart`` and ``recoveries``: persistent
processes from the command line (:mod:`pstack_tasks.fleet.persistence`; docs/persistence.md)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import click

from pstack_tasks.ui.cli.common import configure_logging, friendly_errors, parse_rmap

CONTEXT = {"help_option_names": ["-h", "--help"]}


@click.command(context_settings=CONTEXT)
@click.argument("pid", type=int)
@click.option("-o", "--out", type=click.Path(dir_okay=False), default=None,
              help="Write the snapshot (JSON) to FILE; a summary goes to stdout.")
@click.option("--full-state", is_flag=True, help="Include array and tuple state members.")
@click.option("-d", "--debug", is_flag=True)
@friendly_errors("pstack")
def snapshot(pid: int, out: str | None, full_state: bool, debug: bool) -> None:
    """Pause every region of running process PID at one barrier, print its states, messages in flight
    and counters (JSON), and let it carry on."""
    configure_logging(debug)
    from pstack_tasks.fleet.persistence.snapshots import snapshot as take
    snap = take(pid, full_state=full_state)
    if out is None:
        click.echo(json.dumps(snap))
        return
    Path(out).write_text(json.dumps(snap))
    click.echo(f"process {pid}: {len(snap['states'])} device states, {snap['in_flight']} messages in flight, "
               f"{snap['metrics'].get('Delivered messages', 0)} delivered; paused {snap['pause_seconds']:.3f} s "
               f"-> {out}")


@click.command(context_settings=CONTEXT)
@click.argument("pid", type=int)
@click.option("-d", "--debug", is_flag=True)
@friendly_errors("pstack")
def checkpoint(pid: int, debug: bool) -> None:
    """Take a checkpoint of running process PID now."""
    configure_logging(debug)
    from pstack_tasks.fleet.persistence.checkpoints import checkpoint as take
    entry = take(pid)
    click.echo(f"process {pid}: checkpoint {entry['id']}, {entry['size']} bytes in {entry['where']}, "
               f"paused {entry['pause_seconds']:.3f} s")


@click.command(context_settings=CONTEXT)
@click.argument("pid", type=int)
@click.option("-r", "--result", "as_json", is_flag=True, help="Print JSON.")
@click.option("-d", "--debug", is_flag=True)
@friendly_errors("pstack")
def checkpoints(pid: int, as_json: bool, debug: bool) -> None:
    """List the checkpoints of process PID, oldest first: id, time, size, where."""
    configure_logging(debug)
    from pstack_tasks.fleet.persistence.checkpoints import checkpoints as listing
    entries = listing(pid)
    if as_json:
        click.echo(json.dumps(entries))
        return
    click.echo(f"{'ID':>4}  {'TIME':19}  {'SIZE':>12}  {'DELIVERED':>12}  {'PAUSE':>7}  WHERE")
    for e in entries:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(e["time"])))
        click.echo(f"{e['id']:>4}  {when:19}  {e['size']:>12}  {e.get('delivered', 0):>12}  "
                   f"{e.get('pause_seconds', 0):>7.3f}  {e['where']}")


@click.command(context_settings=CONTEXT)
@click.argument("pid", type=int)
@click.option("-c", "--checkpoint", "checkpoint_id", type=int, default=None,
              help="The checkpoint to resume from (default: the last).")
@click.option("--rmap", default=None, help='Another region map, JSON text or a file: {"n1": 1}.')
@click.option("--async", "--detach", "async_", is_flag=True, help="Print the pid and return at once.")
@click.option("-d", "--debug", is_flag=True)
@friendly_errors("pstack")
def restart(pid: int, checkpoint_id: int | None, rmap: str | None, async_: bool, debug: bool) -> None:
    """Resume ended process PID from a checkpoint, as the same pid, and wait for its result."""
    configure_logging(debug)
    from pstack_tasks.fleet.client import block
    from pstack_tasks.fleet.persistence.api import restart as resume
    from pstack_tasks.native.results import format_text
    future = resume(pid, checkpoint_id, parse_rmap(rmap) if rmap else None)
    if async_:
        click.echo(future.pid)
        return
    for line in format_text(block(future)):
        click.echo(line)


@click.command(context_settings=CONTEXT)
@click.argument("pid", type=int)
@click.option("-r", "--result", "as_json", is_flag=True, help="Print JSON.")
@click.option("-d", "--debug", is_flag=True)
@friendly_errors("pstack")
def recoveries(pid: int, as_json: bool, debug: bool) -> None:
    """List the automatic recoveries of process PID, oldest first: when, from which checkpoint, why."""
    configure_logging(debug)
    from pstack_tasks.fleet.client import status
    notes = status(pid)["recoveries"]
    if as_json:
        click.echo(json.dumps(notes))
        return
    click.echo(f"{'N':>3}  {'TIME':19}  {'CHECKPOINT':>10}  REASON")
    for n, note in enumerate(notes, 1):
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(note["time"])))
        click.echo(f"{n:>3}  {when:19}  {note['checkpoint']:>10}  {note['reason']}")


COMMANDS = (snapshot, checkpoint, checkpoints, restart, recoveries)

__all__ = ["COMMANDS"]
