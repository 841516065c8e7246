"""One engine running the whole graph alone, from an engine binary and an instance file, to its
end; and printing its result as ``psim`` prints it.

It needs nothing of the graph package: the instance file is already written, and the engine
names devices, handlers and lines itself.  So ``psim``'s warm start
(:mod:`~pstack_tasks.native.warm_run`) runs an engine this way without parsing the application.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import IO, TextIO

from pstack_tasks.exceptions import SimulationFailed
from pstack_tasks.native.engine_process import read_result, start_alone, wait_one
from pstack_tasks.native.meter import open_meter
from pstack_tasks.native.options import LogSink, RunOptions
from pstack_tasks.native.procs import kill_group
from pstack_tasks.native.results import write_text
from pstack_tasks.native.watch import Engine
from pstack_tasks.phases import phase


def run_alone(engine: Path, inst: Path, app_file: str | None, opts: RunOptions, sink: LogSink | None,
              result: IO[bytes] | None = None) -> Engine:
    """Run ``engine`` on ``inst`` to its end (its output kept, or in the file ``result``);
    SimulationFailed, in the engine's words, if it failed."""
    with ExitStack() as stack:
        meter = open_meter(opts, stack)
        with phase("engine (load, run, result)"):
            started = start_alone(engine, inst, app_file, opts, sink, meter, result)
            stack.callback(kill_group, started.proc)
            wait_one(started, opts, meter)
        return started


def print_alone(engine: Path, inst: Path, app_file: str | None, opts: RunOptions, as_json: bool,
                out: TextIO) -> None:
    """Run the engine and print what pstack's psim prints to ``out``: with ``as_json`` the JSON
    document the engine wrote, as it is (a million states are never parsed into Python objects);
    else the handler log lines as they come, then the result as text."""
    if as_json:
        with tempfile.TemporaryFile(prefix="pstack-result-") as result:
            # the engine writes it to a file, at its own pace, not 64 KiB at a time through a pipe
            ended = run_alone(engine, inst, app_file, opts, opts.log_sink(), result)
            with phase("output"):
                out.flush()
                _write_json(ended, result, out.buffer)
        return

    def to_out(line: str) -> None:
        out.write(line + "\n")

    sink = None if opts.quiet else opts.log or to_out
    write_text(read_result(run_alone(engine, inst, app_file, opts, sink), "the engine"), out)


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
