"""``psim``: simulate a POETS application on this machine (pstack's psim, same flags)."""
from __future__ import annotations

import json
import signal
import sys
from types import FrameType

import click

from pstack_tasks.native.local_run import run_regions
from pstack_tasks.native.options import RunOptions
from pstack_tasks.native.prepare import prepare
from pstack_tasks.native.region_run import print_single, print_single_json
from pstack_tasks.native.results import format_text
from pstack_tasks.ui.cli.common import configure_logging, friendly_errors, parse_rmap, version_option


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("app", type=click.Path(dir_okay=False))
@version_option()
@click.option("-q", "--quiet", is_flag=True, help="Print no handler log lines.")
@click.option("-r", "--result", "as_json", is_flag=True, help="Print the result as one JSON document.")
@click.option("-l", "--level", type=int, default=1, show_default=True, help="Highest handler_log level printed.")
@click.option("-t", "--temp", "tmpdir", type=click.Path(file_okay=False), default=None,
              help="Keep the instance files in this directory.")
@click.option("-d", "--debug", is_flag=True, help="Show tracebacks and debug logging.")
@click.option("--rmap", default=None, help='Region map, JSON text or a file: {"n1": 1}. Regions run locally '
              "through socat and Redis (PSTACK_REDIS_URL, or a private redis-server).")
@click.option("--full-state", is_flag=True, help="Include array and tuple members in the states.")
@click.option("--no-states", is_flag=True, help="Do not report device states (large graphs).")
@click.option("--max-steps", type=click.IntRange(min=0), default=0, help="Stop after N sends (0: no limit).")
@click.option("--time-limit", type=click.FloatRange(min=0), default=0.0, help="Stop after S seconds (0: no limit).")
@friendly_errors("psim")
def main(app: str, quiet: bool, as_json: bool, level: int, tmpdir: str | None, debug: bool, rmap: str | None,
         full_state: bool, no_states: bool, max_steps: int, time_limit: float) -> None:
    """Simulate APP (a graph-schema XML file) and print its metrics and final device states."""
    configure_logging(debug)
    signal.signal(signal.SIGTERM, _terminated)
    opts = RunOptions(level=level, quiet=quiet, states=not no_states, full_state=full_state,
                      max_steps=max_steps, time_limit=time_limit, tmpdir=tmpdir)
    regions = parse_rmap(rmap)
    prep = prepare(app)
    if regions:
        result = run_regions(prep, regions, opts)
    elif as_json:
        sys.stdout.flush()
        print_single_json(prep, opts, sys.stdout.buffer)  # the engine's JSON as it is (no parse of 1M states)
        return
    else:
        sys.stdout.flush()
        print_single(prep, opts, sys.stdout)  # log lines as they come, then the text (native.results.format_text)
        return
    if as_json:
        click.echo(json.dumps(result))
    else:
        for line in format_text(result):
            click.echo(line)


def _terminated(signum: int, frame: FrameType | None) -> None:
    """SIGTERM: unwind (the engines are killed, the run's temporary files removed), then exit 143."""
    print("psim: terminated", file=sys.stderr, flush=True)
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    main()
