"""Run one engine to its end: the whole graph alone, or one region of a split whose peers are
run by someone else (a worker's part of a process).

The region's relay to Redis comes from this process's pool, and goes back to it if the engine
ended cleanly (:mod:`pstack_tasks.native.relay`).  Nothing started here outlives the call.
"""
from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any, TextIO

from pstack_tasks.exceptions import ConfigurationError
from pstack_tasks.graph import loader
from pstack_tasks.native.alone_run import print_alone, run_alone
from pstack_tasks.native.engine_process import Split, read_result, start_region, wait_one
from pstack_tasks.native.meter import open_meter
from pstack_tasks.native.options import LogSink, RunOptions
from pstack_tasks.native.prepare import Prepared
from pstack_tasks.native.procs import kill_group
from pstack_tasks.native.relay import RedisTarget, pool
from pstack_tasks.native.run_files import instance_file
from pstack_tasks.native.split_cache import RegionMap, resolve, split_digest
from pstack_tasks.phases import phase


def run_single(prep: Prepared, opts: RunOptions) -> dict[str, Any]:
    """Run the whole graph in one engine and return its result."""
    return _run_single(prep, opts, opts.log_sink())


def print_single(prep: Prepared, opts: RunOptions, as_json: bool, out: TextIO) -> None:
    """Run the whole graph in one engine and print what pstack's psim prints to ``out``
    (:func:`~pstack_tasks.native.alone_run.print_alone`)."""
    with ExitStack() as stack:
        inst = _instance(prep, opts, stack)
        print_alone(prep.engine, inst, prep.app.file, opts, as_json, out)


def _run_single(prep: Prepared, opts: RunOptions, sink: LogSink | None) -> dict[str, Any]:
    with ExitStack() as stack:
        engine = run_alone(prep.engine, _instance(prep, opts, stack), prep.app.file, opts, sink)
        return read_result(engine, "the engine")


def _instance(prep: Prepared, opts: RunOptions, stack: ExitStack) -> Path:
    """The instance file of a run in one region (removed with ``stack`` unless it is kept)."""
    regions_arr, _ = loader.region_array(prep.app.instance, None)
    with phase("instance write"):
        return instance_file(prep, regions_arr, opts, stack)


def run_one_region(prep: Prepared, rmap: RegionMap, opts: RunOptions) -> dict[str, Any]:
    """Run only region ``opts.region`` of a split; its peers are run by someone else (a worker).

    The caller owns the Redis keys of the process (``<pid>.active`` set to the number of regions
    before any region starts); this is the engine protocol's ``run_engine`` for one region.
    """
    regions_arr, regions, _ = resolve(prep.app, rmap)
    if opts.split_digest is not None and split_digest(regions_arr) != opts.split_digest:
        raise ConfigurationError(f"region {opts.region}: the automatic split computed here differs from the "
                                 "client's (pymetis or pstack-celery versions differ between the hosts)")
    region = opts.region
    if region is None or region not in regions:
        raise ConfigurationError(f"region {region} has no devices (regions in use: {regions})")
    if len(regions) == 1:
        return run_single(prep, opts)
    if opts.pid is None:
        raise ConfigurationError("running one region of a split needs options['pid']")
    url = opts.redis()
    if not url:
        raise ConfigurationError("running one region of a split needs PSTACK_REDIS_URL or options['redis_url']")
    target = RedisTarget.parse(url)
    with ExitStack() as stack:
        inst = instance_file(prep, regions_arr, opts, stack)
        meter = open_meter(opts, stack)
        relay = pool.acquire(target)
        clean = False
        stack.callback(lambda: pool.release(relay, clean))
        split = Split(region, regions, opts.pid)
        engine = start_region(prep, inst, opts, relay, split, opts.log_sink(), meter)
        stack.callback(kill_group, engine.proc)
        wait_one(engine, opts, meter)
        clean = True
        return read_result(engine, f"region {region}")
