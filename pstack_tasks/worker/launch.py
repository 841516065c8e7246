"""A Celery worker of the stack's app started without the ``celery`` command line.

``python -m celery ... worker`` imports every installed Celery command plugin first (Flower's
web app, the REPL's prompt toolkit, the AMQP shell): about 0.5 s of CPU before the worker's own
imports begin, which was a third of an embedded ``pstack run`` (docs/processes.md, "Start-up").
This module builds the same worker (``app.Worker``, what ``celery worker`` builds) from the few
options the stack uses, so local fleets (:mod:`pstack_tasks.worker.local`) start in less.
``pstack worker`` still execs the ``celery`` command, which users know and can extend.

    python -m pstack_tasks.worker.launch -n psim@local -Q engine.psim,engine.psim.local -c 2 -P prefork
"""
from __future__ import annotations

import argparse
import sys


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m pstack_tasks.worker.launch", description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--hostname", required=True, help="node name, e.g. psim@local")
    ap.add_argument("-Q", "--queues", required=True, help="comma-separated queues")
    ap.add_argument("-c", "--concurrency", type=int, required=True)
    ap.add_argument("-P", "--pool", default="prefork", choices=("prefork", "threads", "solo"))
    ap.add_argument("--loglevel", default="warning")
    ap.add_argument("--without-heartbeat", action="store_true",
                    help="no Celery event heartbeats (nothing monitors a private stack)")
    ap.add_argument("--without-flower-tasks", action="store_true",
                    help="no tasks for Flower's HTTP API (worker/flower_tasks.py; a private stack has no Flower)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    from pstack_tasks.celery_app import app  # after parsing: --help needs no Celery
    if args.without_flower_tasks:  # they import the client side too: 50-120 ms of a worker's start
        app.conf.include = [m for m in app.conf.include if m != "pstack_tasks.worker.flower_tasks"]
    worker = app.Worker(hostname=args.hostname, queues=args.queues.split(","), concurrency=args.concurrency,
                        pool_cls=args.pool, loglevel=args.loglevel, without_gossip=True, without_mingle=True,
                        without_heartbeat=args.without_heartbeat, quiet=True, no_color=True)
    worker.start()
    return int(worker.exitcode or 0)


if __name__ == "__main__":
    raise SystemExit(main())
