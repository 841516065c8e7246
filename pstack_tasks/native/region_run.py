"""Run one engine to its end: the whole graph alone, or one region of a split whose peers are
run by someone else (a worker's part of a process).

The region's relay to Redis comes from this process's pool, and goes back to it if the engine
ended cleanly (:mod:`pstack_tasks.native.relay`).  Nothing started here outlives the call.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import ExitStack
from typing import IO, Any

from pstack_tasks.exceptions import ConfigurationError, SimulationFailed
from pstack_tasks.graph import loader
from pstack_tasks.native.engine_process import Split, read_result, start_alone, start_region, wait_one
from pstack_tasks.native.meter import open_meter
from pstack_tasks.native.options import LogSink, RunOptions
from pstack_tasks.native.prepare import Prepared
from pstack_tasks.native.procs import kill_group
from pstack_tasks.native.relay import RedisTarget, pool
from pstack_tasks.native.results import write_text
from pstack_tasks.native.run_files import instance_file
from pstack_tasks.native.split_cache import RegionMap, resolve, split_digest
from pstack_tasks.native.watch import Engine
from pstack_tasks.phases import phase


def run_single(prep: Prepared, opts: RunOptions) -> dict[str, Any]:
    """Run the whole graph in one engine and return its result."""
    return _run_single(prep, opts, opts.log_sink())


def print_single(prep: Prepared, opts: RunOptions, out: IO[str]) -> None:
    """Run the whole graph in one engine and print what pstack prints to ``out``: the handler
    log lines as they come, then the result as text."""
    def to_out(line: str) -> None:
        out.write(line + "\n")

    sink = None if opts.quiet else opts.log or to_out
    write_text(_run_single(prep, opts, sink), out)


def print_single_json(prep: Prepared, opts: RunOptions, out: IO[bytes]) -> None:
    """Run the whole graph in one engine and write its result, the JSON document the engine
    printed, to ``out`` as it is: a million states are never parsed into Python objects.  The
    engine writes it to a file (at its own pace, not 64 KiB at a time through a pipe)."""
    with tempfile.TemporaryFile(prefix="pstack-result-") as result:
        engine = _run_engine(prep, opts, opts.log_sink(), result)
        with phase("output"):
            _write_json(engine, result, out)


def _write_json(engine: Engine, result: IO[bytes], out: IO[bytes]) -> None:
    size = result.seek(0, os.SEEK_END)
    result.seek(0)
    head = result.read(min(size, 64)).lstrip()
    result.seek(max(0, size - 64))
    raw_tail = result.read()
    tail = raw_tail.rstrip()
    if not (head.startswith(b"{") and tail.endswith(b"}")):
        result.seek(0)
        engine.out += result.read()
        read_result(engine, "the engine")  # names what is wrong with it
        raise SimulationFailed("the engine printed a result that is not a JSON object")
    result.seek(0)
    shutil.copyfileobj(result, out, 1 << 22)
    if not raw_tail.endswith(b"\n"):
        out.write(b"\n")


def _run_single(prep: Prepared, opts: RunOptions, sink: LogSink | None) -> dict[str, Any]:
    return read_result(_run_engine(prep, opts, sink), "the engine")


def _run_engine(prep: Prepared, opts: RunOptions, sink: LogSink | None, result: IO[bytes] | None = None) -> Engine:
    """The engine of a run in one region, run to its end (its output kept, or in ``result``)."""
    regions_arr, _ = loader.region_array(prep.app.instance, None)
    with ExitStack() as stack:
        with phase("instance write"):
            inst = instance_file(prep, regions_arr, opts, stack)
        meter = open_meter(opts, stack)
        with phase("engine (load, run, result)"):
            engine = start_alone(prep, inst, opts, sink, meter, result)
            stack.callback(kill_group, engine.proc)
            wait_one(engine, opts, meter)
        return engine


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
