"""``pstack inspect PID`` and ``pstack inject PID DEVICE PIN k=v ...``: a running process looked
into and fed from the command line (:mod:`pstack_tasks.fleet.inspection`); ``pstack draw APP``:
its picture (:mod:`pstack_tasks.ui.drawing`).  docs/debugging.md."""
from __future__ import annotations

import json
from typing import Any

import click

from pstack_tasks.exceptions import ConfigurationError
from pstack_tasks.ui.cli.common import configure_logging, friendly_errors

CONTEXT = {"help_option_names": ["-h", "--help"]}


def parse_fields(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``k=v`` words as message fields: each value read as JSON (numbers, lists), else kept as text."""
    from pstack_tasks.graph.overrides import parse_value
    fields: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ConfigurationError(f"field {pair!r}: expected NAME=VALUE, e.g. x=1.5")
        fields[key] = parse_value(raw)
    return fields


@click.command(context_settings=CONTEXT)
@click.argument("pid", type=int)
@click.option("-n", "--items", type=click.IntRange(min=0), default=5, show_default=True,
              help="Queued items shown per region.")
@click.option("-r", "--result", "as_json", is_flag=True, help="Print JSON.")
@click.option("-d", "--debug", is_flag=True)
@friendly_errors("pstack")
def inspect(pid: int, items: int, as_json: bool, debug: bool) -> None:
    """Show each region of a process: host, busy or idle, queue length and first items, delivered so far."""
    configure_logging(debug)
    from pstack_tasks.fleet.inspection import inspect as inspect_process
    view = inspect_process(pid, items=items)
    if as_json:
        click.echo(json.dumps(view))
        return
    from pstack_tasks.ui.inspect_view import inspect_view
    from pstack_tasks.ui.tables import echo
    echo(inspect_view(view))


@click.command(context_settings=CONTEXT)
@click.argument("pid", type=int)
@click.argument("device")
@click.argument("pin")
@click.argument("fields", nargs=-1)
@click.option("-d", "--debug", is_flag=True)
@friendly_errors("pstack")
def inject(pid: int, device: str, pin: str, fields: tuple[str, ...], debug: bool) -> None:
    """Send a message from DEVICE on its output PIN into running process PID (fields as NAME=VALUE)."""
    configure_logging(debug)
    from pstack_tasks.fleet.inspection import inject as inject_message
    done = inject_message(pid, device, pin, **parse_fields(fields))
    regions = ", ".join(str(r) for r in done["regions"]) or "none (the pin has no edges)"
    click.echo(f"injected {done['item']!r} into process {pid}, regions {regions}")


@click.command(context_settings=CONTEXT)
@click.argument("app", type=click.Path(dir_okay=False))
@click.option("--rmap", default=None, help='Region map, JSON text or a file: {"n1": 1}; colours the devices.')
@click.option("--regions", "nregions", type=int, default=None, metavar="K", help="Split into K regions by METIS.")
@click.option("-o", "--output", default=None, metavar="FILE",
              help="The picture: .svg, .png, .pdf or .dot (default: <instance id>.svg here).")
@click.option("--collapse-above", type=click.IntRange(min=0), default=None, metavar="N",
              help="Draw device types per region above N devices (default 200).")
@click.option("-d", "--debug", is_flag=True)
@friendly_errors("pstack")
def draw(app: str, rmap: str | None, nregions: int | None, output: str | None, collapse_above: int | None,
         debug: bool) -> None:
    """Draw APP's graph with graphviz: devices coloured by region, cut edges red and dashed."""
    configure_logging(debug)
    from pstack_tasks.ui.cli.common import parse_rmap
    from pstack_tasks.ui.drawing import COLLAPSE_ABOVE
    from pstack_tasks.ui.drawing import draw as draw_app
    click.echo(draw_app(app, parse_rmap(rmap) or None, output, regions=nregions,
                        collapse_above=COLLAPSE_ABOVE if collapse_above is None else collapse_above))


__all__ = ["inspect", "inject", "draw", "parse_fields"]
