"""Run every region of a split on this machine, each engine talking to Redis through a socat
relay of its own: ``psim --rmap`` and ``psim(rmap=...)``.

The run owns its process's keys (:class:`~pstack_tasks.protocol.QueueKeys`): it allocates a
pid unless given one, resets the keys and sets ``<pid>.active`` to the number of regions before
any region starts, and deletes them afterwards.  With no Redis configured it starts a private
redis-server for the run.  A region that fails takes the others down at once; nothing outlives
the run.
"""
from __future__ import annotations

from array import array
from contextlib import ExitStack
from typing import Any

from pstack_tasks.config import mask_url
from pstack_tasks.exceptions import RedisUnavailable, RegionStopped, SimulationFailed
from pstack_tasks.native.engine_process import Split, read_result, start_region
from pstack_tasks.native.meter import stop_check
from pstack_tasks.native.options import RunOptions
from pstack_tasks.native.prepare import Prepared
from pstack_tasks.native.procs import kill_group
from pstack_tasks.native.redis_server import EmbeddedRedis
from pstack_tasks.native.region_run import run_single
from pstack_tasks.native.relay import RedisTarget, Relay
from pstack_tasks.native.results import merge_results
from pstack_tasks.native.run_files import RunDir, run_patch, write_instance_file
from pstack_tasks.native.split_cache import RegionMap, resolve
from pstack_tasks.native.watch import Engine, wait_engines
from pstack_tasks.protocol import PID_COUNTER, QueueKeys


def run_regions(prep: Prepared, rmap: RegionMap, opts: RunOptions) -> dict[str, Any]:
    """Run every region of a split on this machine and return the merged result (with an
    automatic split, ``"partition"``: its report)."""
    regions_arr, regions, report = resolve(prep.app, rmap)
    result = _run_split(prep, regions_arr, regions, opts)
    if report is not None:
        result["partition"] = report.as_dict()
    return result


def _run_split(prep: Prepared, regions_arr: array[int], regions: list[int], opts: RunOptions) -> dict[str, Any]:
    if len(regions) <= 1:
        return run_single(prep, opts)
    with ExitStack() as stack:
        work = RunDir.make(opts, stack)
        target = _redis_target(opts, stack)
        pid = _own_keys(target, opts, regions, stack)
        if opts.on_split is not None:  # psim's snapshots of the split (docs/persistence.md, "psim")
            opts.on_split(target.url, pid, regions)
        inst = write_instance_file(prep, regions_arr, work.path, run_patch(prep, opts))
        sink = opts.log_sink()
        running: list[tuple[Engine, Relay]] = []
        stack.callback(_stop_all, running)
        for r in regions:
            relay = Relay(target)
            try:
                running.append((start_region(prep, inst, opts, relay, Split(r, regions, pid), sink), relay))
            except BaseException:
                relay.close()
                raise
        return _collect(prep, opts, running)


def _redis_target(opts: RunOptions, stack: ExitStack) -> RedisTarget:
    """The run's Redis, or a private redis-server that stops when ``stack`` closes."""
    url = opts.redis()
    if not url:
        url = stack.enter_context(EmbeddedRedis()).url
    return RedisTarget.parse(url)


def _own_keys(target: RedisTarget, opts: RunOptions, regions: list[int], stack: ExitStack) -> int:
    """Take a pid (unless the run has one), reset its keys and arm the termination counter; the
    keys go when ``stack`` closes.  Returns the pid."""
    client = target.client()
    stack.callback(client.close)
    try:
        pid = opts.pid if opts.pid is not None else int(client.incr(opts.prefix + PID_COUNTER))
    except Exception as e:  # redis.ConnectionError and friends, named for the user
        raise RedisUnavailable(f"cannot reach Redis at {mask_url(target.url)}: {e}") from None
    keys = QueueKeys(opts.prefix, pid)
    client.delete(*keys.all(regions))
    client.set(keys.active, len(regions))
    stack.callback(client.delete, *keys.all(regions))
    return pid


def _stop_all(running: list[tuple[Engine, Relay]]) -> None:
    for engine, relay in running:
        kill_group(engine.proc)
        relay.close()


def _collect(prep: Prepared, opts: RunOptions, running: list[tuple[Engine, Relay]]) -> dict[str, Any]:
    """Wait for every region to end well, let the relays deliver what is left, merge the results."""
    failed = wait_engines([e for e, _ in running], stop_check(opts, None))
    if isinstance(failed, RegionStopped):
        raise failed
    if failed is not None:
        raise SimulationFailed(f"region {failed.region}: {failed.reason()}")
    for _, relay in running:
        relay.finish()
    parts = {e.region: read_result(e, f"region {e.region}") for e, _ in running}
    result = merge_results(parts)
    if opts.states:  # in device order, as a single engine reports them
        states = result["states"]
        result["states"] = {n: states[n] for n in prep.app.instance.names if n in states}
    return result
