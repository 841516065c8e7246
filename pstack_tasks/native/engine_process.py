"""One engine process: its command line, starting it (alone, or as a region on a relay to
Redis), waiting for it to end well, and reading its result.

The command line is the engine protocol's (docs/engine-protocol.md).  Engines start in a
process group of their own, without a pre-exec hook (:func:`~pstack_tasks.native.procs.start_in_own_group`),
and follow their parent themselves (``--parent-pid``).
"""
from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pstack_tasks.config import settings
from pstack_tasks.exceptions import RegionStopped, SimulationFailed
from pstack_tasks.native.meter import ProgressMeter, stop_check
from pstack_tasks.native.options import LogSink, RunOptions
from pstack_tasks.native.procs import start_in_own_group
from pstack_tasks.native.watch import Engine, wait_engines

if TYPE_CHECKING:  # types only: a run alone (psim's warm start) imports neither the graph package nor relays
    from pstack_tasks.native.prepare import Prepared
    from pstack_tasks.native.relay import Relay


@dataclass(frozen=True)
class Split:
    """Where a region sits in a split: its number, every region in use, and the process id
    its queue names carry."""

    region: int
    regions: list[int]
    pid: int


def engine_command(engine: Path, instance: Path, opts: RunOptions, split: Split | None = None, skip: int = 0,
                   app_file: str | None = None) -> list[str]:
    """The engine's command line for this run (``split``: the region's part in a split)."""
    cmd = [str(engine), str(instance), "--level", str(-1 if opts.quiet else opts.level)]
    if app_file:
        cmd += ["--app-file", app_file]
    flags = (("--no-states", not opts.states), ("--full-state", opts.full_state))
    cmd += [flag for flag, wanted in flags if wanted]
    if opts.max_steps:
        cmd += ["--max-steps", str(int(opts.max_steps))]
    if opts.time_limit:
        cmd += ["--time-limit", str(float(opts.time_limit))]
    if split is not None and len(split.regions) > 1:
        cmd += ["--pid", str(split.pid), "--prefix", opts.prefix, "--region", str(split.region),
                "--regions", ",".join(map(str, split.regions)), "--skip-replies", str(skip)]
    if opts.resume:
        cmd += ["--resume", opts.resume]
    if opts.snapshot_dir and (split is None or len(split.regions) == 1):
        cmd += ["--snapshot-dir", opts.snapshot_dir]
    return cmd + limit_args()


def limit_args() -> list[str]:
    """What every engine started here is held to: die with its parent, the configured limits."""
    cfg = settings()
    args = ["--parent-pid", str(os.getpid())]
    for flag, value in (("--cpu-limit", cfg.engine_cpu_limit), ("--memory-limit", cfg.engine_memory_limit),
                        ("--file-limit", cfg.engine_file_limit)):
        if value:
            args += [flag, str(value)]
    return args


def start_alone(engine: Path, inst: Path, app_file: str | None, opts: RunOptions, sink: LogSink | None,
                meter: ProgressMeter | None, result: IO[bytes] | None = None) -> Engine:
    """Start the whole graph in one engine, its result on a pipe (or into the file ``result``)
    and its log lines to ``sink``."""
    cmd = engine_command(engine, inst, opts, app_file=app_file)
    if meter:
        cmd += meter.args()
    proc = start_in_own_group(cmd, subprocess.DEVNULL, subprocess.PIPE if result is None else result,
                              subprocess.PIPE, (meter.fd,) if meter else ())
    return Engine(proc, sink)


def start_region(prep: Prepared, inst: Path, opts: RunOptions, relay: Relay, split: Split,
                 sink: LogSink | None, meter: ProgressMeter | None = None) -> Engine:
    """Start one region's engine on a relay to Redis (its commands to ``relay.command_fd``, the
    replies on its stdin)."""
    cmd = engine_command(prep.engine, inst, opts, split, relay.take_skip(), prep.app.file)
    cmd += ["--command-fd", str(relay.command_fd), *(meter.args() if meter else [])]
    proc = start_in_own_group(cmd, relay.reply_fd, subprocess.PIPE, subprocess.PIPE,
                              (relay.command_fd, meter.fd) if meter else (relay.command_fd,))
    return Engine(proc, sink, split.region)


def wait_one(engine: Engine, opts: RunOptions, meter: ProgressMeter | None) -> Engine:
    """Wait for one engine to end well; RegionStopped if asked to stop, SimulationFailed (in the
    engine's words) if it failed.  The caller names the region, where there is one."""
    failed = wait_engines([engine], stop_check(opts, meter))
    if isinstance(failed, RegionStopped):
        raise failed
    if meter:
        meter.tick(final=True)
    if failed is not None:
        raise SimulationFailed(failed.reason())
    return engine


def read_result(engine: Engine, who: str) -> dict[str, Any]:
    """The JSON result an engine printed; SimulationFailed naming ``who`` if it is unreadable."""
    try:
        result = json.loads(bytes(engine.out))
    except json.JSONDecodeError as e:
        raise SimulationFailed(f"{who} printed an unreadable result ({e.msg} at byte {e.pos})") from None
    if not isinstance(result, dict):
        raise SimulationFailed(f"{who} printed a result that is not a JSON object")
    return result
