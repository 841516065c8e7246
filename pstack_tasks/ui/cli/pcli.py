"""``pcli``: the interactive terminal of the stack (a thin click entry over :mod:`pstack_tasks.ui.shell`)."""
from __future__ import annotations

import os

import click

from pstack_tasks.ui.cli.common import configure_logging, friendly_errors, version_option
from pstack_tasks.ui.extras import require_shell

CONTEXT = {"help_option_names": ["-h", "--help"]}


@click.command(context_settings=CONTEXT)
@version_option()
@click.option("-q", "--quiet", is_flag=True, help="No banner.")
@click.option("-n", "--no-color", is_flag=True, help="No colour (also when NO_COLOR is set).")
@click.option("-e", "--engine", "engines", multiple=True,
              help="Embedded stack only (PSTACK_REDIS_URL unset): engine types to start (repeatable; default psim).")
@click.option("-s", "--slots", type=click.IntRange(min=1), default=None,
              help="Embedded stack only: slots per engine worker (default: CPU count, at most 4).")
@click.option("-d", "--debug", is_flag=True, help="Show tracebacks and debug logging.")
@friendly_errors("pcli")
def main(quiet: bool, no_color: bool, engines: tuple[str, ...], slots: int | None, debug: bool) -> None:
    """A Python REPL with pstack's built-ins: run, block, ps, kill, status, engines, top, help, pp, read,
    devices, messages, instance, unit. It talks to the fleet of PSTACK_REDIS_URL, or starts an embedded
    stack for the session when that is unset."""
    configure_logging(debug)
    require_shell("pcli")
    from pstack_tasks.ui.shell import start
    color = not no_color and not os.environ.get("NO_COLOR")
    start(quiet=quiet, color=color, engines=engines, slots=slots)


if __name__ == "__main__":
    main()
