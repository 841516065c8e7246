"""``psim``: simulate a POETS application on this machine (pstack's psim, same flags).

Start-up is most of a small run, so this command imports only what the run needs: argparse,
not click (whose import alone costs more than a small engine run); Redis, relays and the
embedded redis-server only with ``--rmap``; jinja2 only when the engine is not cached
(:mod:`pstack_tasks.native.engine_index`); and a file run before starts warm, without the graph
package at all (:mod:`pstack_tasks.native.warm_run`).  docs/psim.md, "Start-up", has the figures.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from pstack_tasks.native import warm_run
from pstack_tasks.native.alone_run import print_alone
from pstack_tasks.native.options import RunOptions
from pstack_tasks.ui.cli.common import configure_logging, friendly_errors, installed_version, parse_rmap, parse_sets
from pstack_tasks.ui.cli.exit_status import USAGE
from pstack_tasks.ui.cli.psim_persist import persistence

if TYPE_CHECKING:
    from pstack_tasks.native.prepare import Prepared
    from pstack_tasks.native.split_cache import RegionMap


class _Parser(argparse.ArgumentParser):
    """argparse with the usage line the other commands print (``Usage: psim [OPTIONS] APP``)."""

    def format_usage(self) -> str:
        return f"Usage: {self.prog} [OPTIONS] APP\nTry '{self.prog} -h' for help.\n"

    def error(self, message: str) -> Any:
        self.exit(USAGE, f"{self.format_usage()}\n{self.prog}: error: {message}\n")


def _file(value: str) -> str:
    if Path(value).is_dir():
        raise argparse.ArgumentTypeError(f"{value!r} is a directory")
    return value


def _at_least_zero(kind: type) -> Any:
    def check(value: str) -> Any:
        try:
            number = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a valid {kind.__name__}") from None
        if number < 0:
            raise argparse.ArgumentTypeError(f"{value} is not >= 0")
        return number
    return check


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="psim", usage="%(prog)s [OPTIONS] APP", add_help=False,
                description="Simulate APP (a graph-schema XML file, plain or gzip-compressed) and print its metrics "
                            "and final device states.")
    p.add_argument("app", metavar="APP", type=_file, help="the application's XML file (.xml or .xml.gz)")
    p.add_argument("-h", "--help", action="help", help="Show this message and exit.")
    p.add_argument("--version", action="store_true", help="Show the version and exit.")
    p.add_argument("-q", "--quiet", action="store_true", help="Print no handler log lines.")
    p.add_argument("-r", "--result", dest="as_json", action="store_true",
                   help="Print the result as one JSON document.")
    p.add_argument("-l", "--level", type=int, default=1, help="Highest handler_log level printed (default 1).")
    p.add_argument("-t", "--temp", dest="tmpdir", default=None, help="Keep the instance files in this directory.")
    p.add_argument("-d", "--debug", action="store_true", help="Show tracebacks and debug logging.")
    p.add_argument("--rmap", default=None, help='Region map, JSON text or a file: {"n1": 1}. Regions run '
                   "locally through socat and Redis (PSTACK_REDIS_URL, or a private redis-server).")
    p.add_argument("--regions", type=int, default=None, metavar="K",
                   help="Split into K regions by METIS (balanced, fewest cut edges); the cut and balance go to stderr.")
    p.add_argument("--full-state", action="store_true", help="Include array and tuple members in the states.")
    p.add_argument("--no-states", action="store_true", help="Do not report device states (large graphs).")
    p.add_argument("--max-steps", type=_at_least_zero(int), default=0, help="Stop after N sends (0: no limit).")
    p.add_argument("--time-limit", type=_at_least_zero(float), default=0.0,
                   help="Stop after S seconds (0: no limit).")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=V",
                   help="Override a value without recompiling: graph:NAME=V, type:TYPE.NAME=V, device:ID.NAME=V, "
                   "state:TYPE.NAME=V (repeatable; docs/batches.md).")
    p.add_argument("--resume", type=_file, default=None, metavar="FILE",
                   help="Start from a checkpoint file (psim's or the fleet's) instead of the beginning.")
    p.add_argument("--checkpoint-every", type=_at_least_zero(float), default=0.0, metavar="S",
                   help="Write a checkpoint every S seconds (each file is named on stderr).")
    p.add_argument("--checkpoint-dir", default=None, metavar="DIR",
                   help="Where checkpoints and SIGUSR1's snapshots go (default: the current directory).")
    return p


def main(argv: Sequence[str] | None = None) -> None:
    """The ``psim`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--version" in args:
        print(f"psim {installed_version()}")
        return
    ns = parser().parse_args(args)
    simulate(**{k: v for k, v in vars(ns).items() if k != "version"})


@friendly_errors("psim")
def simulate(app: str, quiet: bool, as_json: bool, level: int, tmpdir: str | None, debug: bool, rmap: str | None,
             regions: int | None, full_state: bool, no_states: bool, max_steps: int, time_limit: float,
             sets: Sequence[str] = (), resume: str | None = None, checkpoint_every: float = 0.0,
             checkpoint_dir: str | None = None) -> None:
    """Simulate APP and print its metrics and final device states."""
    configure_logging(debug)
    signal.signal(signal.SIGTERM, _terminated)
    opts = RunOptions(level=level, quiet=quiet, states=not no_states, full_state=full_state,
                      max_steps=max_steps, time_limit=time_limit, tmpdir=tmpdir, overrides=parse_sets(sets) or None,
                      resume=resume)
    with persistence(app, checkpoint_every, checkpoint_dir) as (snapshot_dir, on_split):
        opts.snapshot_dir, opts.on_split = snapshot_dir, on_split
        warm = rmap is None and regions is None and warm_run.eligible(opts)
        record = warm_run.find(app) if warm else None
        if record is not None:  # the file was run before: no parse, no graph package (native/warm_run.py)
            print_alone(record.engine, record.instance, app, opts, as_json, sys.stdout)
            return
        _simulate(app, opts, rmap, regions, as_json, warm)


def _simulate(app: str, opts: RunOptions, rmap: str | None, regions: int | None, as_json: bool, warm: bool) -> None:
    from pstack_tasks.graph.overrides import check  # here: a warm start needs none of these
    from pstack_tasks.graph.partition import combine
    from pstack_tasks.native.prepare import prepare
    from pstack_tasks.native.region_run import print_single

    split = combine(parse_rmap(rmap), regions)
    prep = prepare(app)
    if opts.overrides:  # a bad key or value: one line before any engine starts
        check(prep.app, opts.overrides)
    if not split:
        record = warm_run.remember(app, prep) if warm else None
        if record is not None:
            print_alone(record.engine, record.instance, app, opts, as_json, sys.stdout)
        else:
            print_single(prep, opts, as_json, sys.stdout)
        return
    result = _run_split(prep, split, opts)
    if as_json:
        print(json.dumps(result))
    else:
        from pstack_tasks.native.results import format_text
        for line in format_text(result):
            print(line)


def _run_split(prep: Prepared, split: RegionMap, opts: RunOptions) -> dict[str, Any]:
    from pstack_tasks.graph.partition import split_line
    from pstack_tasks.native.local_run import run_regions  # here: Redis and relays only for a split
    result = run_regions(prep, split, opts)
    if "partition" in result:
        print(f"psim: {split_line(result['partition'])}", file=sys.stderr)
    return result


def _terminated(signum: int, frame: FrameType | None) -> None:
    """SIGTERM: unwind (the engines are killed, the run's temporary files removed), then exit 143."""
    print("psim: terminated", file=sys.stderr, flush=True)
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    main()
