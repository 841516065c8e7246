"""The Python API of the standalone simulator: ``psim`` and the engine protocol's ``run_engine``."""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pstack_tasks.graph.partition import combine
from pstack_tasks.native.options import RunOptions
from pstack_tasks.native.prepare import prepare
from pstack_tasks.native.region_run import run_one_region, run_single
from pstack_tasks.native.split_cache import RegionMap


def psim(xml_or_path: str | bytes | os.PathLike[str], rmap: RegionMap = None,
         options: Mapping[str, Any] | None = None, regions: int | None = None) -> dict[str, Any]:
    """Simulate an application on this machine and return ``{"states": ..., "metrics": ...}``.

    Args:
        xml_or_path: the application's XML text, or the path of its file.
        rmap: region map ``{device: region}``; with more than one region every region runs
            here, each in its own engine, exchanging messages through Redis
            (``PSTACK_REDIS_URL``, or a private redis-server started for the run).
            ``"auto:K"``: K regions split by METIS (as ``regions=K``).
        regions: split into this many regions by METIS (balanced, fewest cut edges; cached per
            instance); the result's ``"partition"`` reports the cut and balance.  Refused with
            an rmap (also as ``options["regions"]``).
        options: see :class:`pstack_tasks.native.options.RunOptions` (``level``, ``quiet``,
            ``states``, ``full_state``, ``max_steps``, ``time_limit``, ``pid``, ``prefix``, ...).

    Raises:
        GraphError: the file is malformed (the message names file:line).
        BuildError: a handler does not compile (the message names the handler and line).
        SimulationFailed: a handler crashed or failed an assertion (names device and handler).
    """
    opts = RunOptions.from_dict(options)
    rmap = combine(combine(rmap, opts.regions), regions)
    prep = prepare(xml_or_path, opts.app_id)
    if opts.region is not None:
        return run_one_region(prep, rmap or {}, opts)
    if rmap:
        from pstack_tasks.native.local_run import run_regions  # here: Redis and relays only for a split
        return run_regions(prep, rmap, opts)
    return run_single(prep, opts)


def run_engine(xml: str, rmap: RegionMap = None,
               options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """pstack's engine entry point (seed 002): ``run_engine(xml, rmap={}, options={})``.

    With ``options["region"]`` (and ``pid``), only that region runs, against
    ``PSTACK_REDIS_URL``: this is how a worker runs its part of a distributed process.
    Without it, every region runs here, as :func:`psim` does.
    """
    return psim(xml, rmap, options)
