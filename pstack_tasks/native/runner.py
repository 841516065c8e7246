"""Run compiled engines: one region directly, several regions locally through socat and Redis.

This is the engine protocol's Python side (docs/engine-protocol.md): the engine
gets the instance file and its region on the command line, writes Redis
commands to a pipe and reads the replies on stdin, both relayed by socat
(:mod:`relay`).  A region that fails takes the others down at once; nothing
outlives the run.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, fields
from pathlib import Path
from typing import IO, Any

from pstack_tasks.config import mask_url, settings
from pstack_tasks.exceptions import ConfigurationError, RedisUnavailable, RegionStopped, SimulationFailed
from pstack_tasks.graph import loader
from pstack_tasks.memo import BoundedCache
from pstack_tasks.native import build, codegen
from pstack_tasks.native.instance_file import write_instance
from pstack_tasks.native.procs import kill_group
from pstack_tasks.native.redis_server import EmbeddedRedis
from pstack_tasks.native.relay import RedisTarget, Relay, child_env, pool
from pstack_tasks.native.results import merge_results
from pstack_tasks.native.watch import Engine, wait_engines
from pstack_tasks.protocol import QueueKeys

logger = logging.getLogger(__name__)


@dataclass
class RunOptions:
    """What a run may be told (the ``options`` dict of ``psim``/``run_engine``)."""

    level: int = 1              # handler_log level printed
    quiet: bool = False         # no log lines at all
    states: bool = True         # report final device states
    full_state: bool = False    # include array/tuple state members
    max_steps: int = 0          # stop after this many sends (0: no limit)
    time_limit: float = 0.0     # stop after this many seconds of simulation (0: no limit)
    pid: int | None = None      # process id used in queue names (allocated from Redis if unset)
    region: int | None = None   # run only this region (run_engine protocol); None: all regions
    prefix: str = ""            # prepended to every Redis key this run uses
    redis_url: str | None = None
    tmpdir: str | None = None   # where instance files go (kept if set)
    log: Callable[[str], None] | None = None  # receives each log line; default: stderr
    should_stop: Callable[[], str | None] | None = None  # polled while running: a reason stops the run
    app_id: str | None = None   # content hash of the application: parsed once per process, then reused
    progress: Callable[[int, int], None] | None = None  # receives (delivered, steps) a few times a second

    @classmethod
    def from_dict(cls, options: Mapping[str, Any] | None) -> RunOptions:
        names = {f.name for f in fields(cls)}
        unknown = set(options or {}) - names
        if unknown:
            raise ConfigurationError(f"unknown option(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(names))}")
        return cls(**dict(options or {}))


@dataclass
class Prepared:
    """An application parsed and its engine built: ready to run any number of times."""

    app: loader.Application
    source: codegen.EngineSource
    engine: Path


def prepare(xml_or_path: str | bytes | os.PathLike[str], app_id: str | None = None) -> Prepared:
    """Parse the application and build (or find) its engine.

    With ``app_id`` (a content hash the caller vouches for), the result is kept for the next
    run of the same application in this process: a worker running many small processes of
    one application parses and renders it once, not once per region.
    """
    if app_id is not None:
        hit = _prepared.get(app_id)
        if hit is not None and hit.engine.is_file():
            return hit
    app = loader.load(xml_or_path)
    source = codegen.render(app.graph_type)
    prep = Prepared(app, source, build.build_engine(source))
    if app_id is not None and app.worth_keeping():
        _prepared.put(app_id, prep)
    return prep


#: applications kept parsed, with their engines, per process (small ones: Application.worth_keeping)
_prepared: BoundedCache[str, Prepared] = BoundedCache(8)


def engine_args(engine: Path, instance: Path, opts: RunOptions, json_out: bool,
                region: int = 0, regions: list[int] | None = None, pid: int = 0, skip: int = 0,
                app_file: str | None = None) -> list[str]:
    cmd = [str(engine), str(instance), "--level", str(-1 if opts.quiet else opts.level)]
    if app_file:
        cmd += ["--app-file", app_file]
    if json_out:
        cmd.append("--json")
    if not opts.states:
        cmd.append("--no-states")
    if opts.full_state:
        cmd.append("--full-state")
    if opts.max_steps:
        cmd += ["--max-steps", str(int(opts.max_steps))]
    if opts.time_limit:
        cmd += ["--time-limit", str(float(opts.time_limit))]
    if regions and len(regions) > 1:
        cmd += ["--pid", str(pid), "--prefix", opts.prefix, "--region", str(region),
                "--regions", ",".join(map(str, regions)), "--skip-replies", str(skip)]
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


class _Meter:
    """The engine's live counters: 16 bytes ({delivered, steps}) of a file it maps and updates.

    The file is unlinked at once and handed over as a descriptor (``--progress-fd``), so a
    worker killed mid-run leaves nothing behind.  A process keeps the files of ended runs
    (zeroed) for its next ones: a worker starts hundreds of small regions a minute.
    """

    INTERVAL = 0.25
    _spare: list[int] = []
    _spare_lock = threading.Lock()

    def __init__(self, report: Callable[[int, int], None]) -> None:
        self.fd = self._take()
        os.pwrite(self.fd, bytes(16), 0)
        self.report = report
        self._next = 0.0

    @classmethod
    def _take(cls) -> int:
        with cls._spare_lock:
            if cls._spare:
                return cls._spare.pop()
        where = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
        fd, path = tempfile.mkstemp(prefix="pstack-progress-", dir=where)
        os.unlink(path)
        os.write(fd, bytes(16))
        return fd

    def args(self) -> list[str]:
        return ["--progress-fd", str(self.fd)]

    def read(self) -> tuple[int, int]:
        delivered, steps = struct.unpack("<QQ", os.pread(self.fd, 16, 0))
        return delivered, steps

    def tick(self, final: bool = False) -> None:
        now = time.monotonic()
        if final or now >= self._next:
            self._next = now + self.INTERVAL
            self.report(*self.read())

    def close(self) -> None:
        """Keep the file for the next run (its engine is gone: the caller killed or reaped it)."""
        with self._spare_lock:
            if len(self._spare) < 4:
                self._spare.append(self.fd)
                return
        os.close(self.fd)


def _forget_spare_meters() -> None:
    _Meter._spare, _Meter._spare_lock = [], threading.Lock()


os.register_at_fork(after_in_child=_forget_spare_meters)  # a forked child: the spares are its parent's


def _meter(opts: RunOptions, stack: ExitStack) -> _Meter | None:
    if opts.progress is None:
        return None
    meter = _Meter(opts.progress)
    stack.callback(meter.close)
    return meter


def _checker(opts: RunOptions, meter: _Meter | None) -> Callable[[], str | None] | None:
    """What the wait loops poll: progress reports, then whether to stop."""
    if meter is None:
        return opts.should_stop

    def check() -> str | None:
        meter.tick()
        return opts.should_stop() if opts.should_stop else None
    return check


def _default_sink(opts: RunOptions) -> Callable[[str], None] | None:
    if opts.quiet:
        return None
    if opts.log is not None:
        return opts.log
    return lambda line: print(line, file=sys.stderr, flush=True)


@dataclass
class _Workdir:
    path: Path
    keep: bool

    @classmethod
    def make(cls, opts: RunOptions, stack: ExitStack) -> _Workdir:
        if opts.tmpdir:
            p = Path(opts.tmpdir)
            p.mkdir(parents=True, exist_ok=True)
            return cls(p, True)
        d = tempfile.mkdtemp(prefix="pstack-run-")
        stack.callback(shutil.rmtree, d, True)
        return cls(Path(d), False)


def instance_file(prep: Prepared, regions_arr: Any, opts: RunOptions, stack: ExitStack) -> Path:
    """The binary instance file for this split: cached beside the application when it has an
    ``app_id`` (a worker runs the same small split again and again), else written for this run."""
    if opts.app_id and not opts.tmpdir:
        split = hashlib.sha256(regions_arr.tobytes()).hexdigest()[:24]
        path = build.app_dir(opts.app_id) / f"{prep.source.type_hash[:16]}-{split}.inst"
        if not path.is_file():
            buf = io.BytesIO()
            write_instance(prep.app, buf, regions_arr, prep.source.type_hash)
            build.write_atomically(path, buf.getvalue())
        return path
    return write_instance_file(prep, regions_arr, _Workdir.make(opts, stack).path)


def write_instance_file(prep: Prepared, regions_arr: Any, where: Path) -> Path:
    path = where / f"{prep.app.graph_type.id}.{os.getpid()}.{threading.get_ident()}.inst"
    with open(path, "wb") as f:
        write_instance(prep.app, f, regions_arr, prep.source.type_hash)
    return path


def run_single(prep: Prepared, opts: RunOptions) -> dict[str, Any]:
    """Run the whole graph in one engine and return its result."""
    result = _run_single(prep, opts, None)
    assert result is not None  # JSON mode always yields a result or raises
    return result


def print_single(prep: Prepared, opts: RunOptions, out: IO[str]) -> None:
    """Run the whole graph in one engine, streaming pstack's text output straight to ``out``."""
    _run_single(prep, opts, out)


def _run_single(prep: Prepared, opts: RunOptions, text_out: IO[str] | None) -> dict[str, Any] | None:
    regions_arr, _ = loader.region_array(prep.app.instance, None)
    with ExitStack() as stack:
        inst = instance_file(prep, regions_arr, opts, stack)
        cmd = engine_args(prep.engine, inst, opts, json_out=text_out is None, app_file=prep.app.file)
        meter = _meter(opts, stack)
        if meter:
            cmd += meter.args()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE if text_out is None else text_out,
                                stderr=subprocess.PIPE, process_group=0, pass_fds=(meter.fd,) if meter else (),
                                env=child_env())
        stack.callback(kill_group, proc)
        engine = _wait_one(Engine(proc, _default_sink(opts)), opts, meter)
        if text_out is not None:
            return None
        return _parse_result(bytes(engine.out), "the engine")


def _wait_one(engine: Engine, opts: RunOptions, meter: _Meter | None) -> Engine:
    """Wait for one engine to end well; RegionStopped if asked to stop, SimulationFailed (in the
    engine's words) if it failed.  The caller names the region, where there is one."""
    failed = wait_engines([engine], _checker(opts, meter))
    if isinstance(failed, RegionStopped):
        raise failed
    if meter:
        meter.tick(final=True)
    if failed is not None:
        raise SimulationFailed(failed.reason())
    return engine


def _parse_result(data: bytes, who: str) -> dict[str, Any]:
    try:
        return json.loads(data)  # type: ignore[no-any-return]
    except json.JSONDecodeError as e:
        raise SimulationFailed(f"{who} printed an unreadable result ({e.msg} at byte {e.pos})") from None


def start_region(prep: Prepared, inst: Path, opts: RunOptions, relay: Relay, region: int,
                 regions: list[int], pid: int, sink: Callable[[str], None] | None,
                 meter: _Meter | None = None) -> Engine:
    """Start one region's engine on a relay to Redis (its commands to ``relay.command_fd``, the
    replies on its stdin)."""
    cmd = engine_args(prep.engine, inst, opts, True, region, regions, pid, relay.take_skip(), prep.app.file)
    cmd += ["--command-fd", str(relay.command_fd), *(meter.args() if meter else [])]
    # No preexec_fn: it would make Python fork the whole (large) worker instead of vfork-ing,
    # ~7 ms of CPU per child.  The engine follows its parent itself (--parent-pid).
    proc = subprocess.Popen(cmd, stdin=relay.reply_fd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            pass_fds=(relay.command_fd, meter.fd) if meter else (relay.command_fd,),
                            process_group=0, env=child_env())
    return Engine(proc, sink, region)


def _redis_url(opts: RunOptions) -> str | None:
    """The run's Redis: its own option, else PSTACK_REDIS_URL (None: start a private one)."""
    return opts.redis_url or settings().redis_url


def run_one_region(prep: Prepared, rmap: Mapping[str, int], opts: RunOptions) -> dict[str, Any]:
    """Run only region ``opts.region`` of a split; its peers are run by someone else (a worker).

    The caller owns the Redis keys of the process (``<pid>.active`` set to the number of regions
    before any region starts); this is the engine protocol's ``run_engine`` for one region.  The
    relay to Redis comes from this process's pool, and goes back to it if the engine ended
    cleanly (:mod:`relay`).
    """
    regions_arr, regions = loader.region_array(prep.app.instance, rmap, prep.app.file)
    if opts.region not in regions:
        raise ConfigurationError(f"region {opts.region} has no devices (regions in use: {regions})")
    if len(regions) == 1:
        return run_single(prep, opts)
    if opts.pid is None:
        raise ConfigurationError("running one region of a split needs options['pid']")
    url = _redis_url(opts)
    if not url:
        raise ConfigurationError("running one region of a split needs PSTACK_REDIS_URL or options['redis_url']")
    target = RedisTarget.parse(url)
    with ExitStack() as stack:
        inst = instance_file(prep, regions_arr, opts, stack)
        meter = _meter(opts, stack)
        relay = pool.acquire(target)
        clean = False
        stack.callback(lambda: pool.release(relay, clean))
        engine = start_region(prep, inst, opts, relay, opts.region, regions, opts.pid, _default_sink(opts), meter)
        stack.callback(kill_group, engine.proc)
        _wait_one(engine, opts, meter)
        clean = True
        return _parse_result(bytes(engine.out), f"region {opts.region}")


def run_regions(prep: Prepared, rmap: Mapping[str, int], opts: RunOptions) -> dict[str, Any]:
    """Run every region of a split on this machine, each engine talking to Redis through socat."""
    regions_arr, regions = loader.region_array(prep.app.instance, rmap, prep.app.file)
    if len(regions) <= 1:
        return run_single(prep, opts)
    with ExitStack() as stack:
        work = _Workdir.make(opts, stack)
        url = _redis_url(opts)
        if not url:
            url = stack.enter_context(EmbeddedRedis()).url
        target = RedisTarget.parse(url)
        client = target.client()
        stack.callback(client.close)
        try:
            pid = opts.pid if opts.pid is not None else int(client.incr(f"{opts.prefix}pstack:next_pid"))
        except Exception as e:  # redis.ConnectionError and friends, named for the user
            raise RedisUnavailable(f"cannot reach Redis at {mask_url(url)}: {e}") from None
        keys = QueueKeys(opts.prefix, pid)
        client.delete(*keys.all(regions))
        client.set(keys.active, len(regions))
        stack.callback(client.delete, *keys.all(regions))
        inst = write_instance_file(prep, regions_arr, work.path)
        sink = _default_sink(opts)
        running: list[tuple[Engine, Relay]] = []

        def stop_all() -> None:
            for engine, relay in running:
                kill_group(engine.proc)
                relay.close()
        stack.callback(stop_all)
        for r in regions:
            relay = Relay(target)
            try:
                running.append((start_region(prep, inst, opts, relay, r, regions, pid, sink), relay))
            except BaseException:
                relay.close()
                raise
        failed = wait_engines([e for e, _ in running], opts.should_stop)
        if isinstance(failed, RegionStopped):
            raise failed
        if failed is not None:
            raise SimulationFailed(f"region {failed.region}: {failed.reason()}")
        for _, relay in running:
            relay.finish()
        parts = {e.region: _parse_result(bytes(e.out), f"region {e.region}") for e, _ in running}
        result = merge_results(parts)
        if opts.states:  # in device order, as a single engine reports them
            states = result["states"]
            result["states"] = {n: states[n] for n in prep.app.instance.names if n in states}
        return result
