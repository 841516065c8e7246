"""The pipe to one debug engine: start it, send a command line, read its reply lines.

The debug engine (``debug_commands.cpp``) runs in its own process: a handler that crashes, fails an
assert or calls ``exit`` ends that process with the runtime's one error line on stderr, never
the Python session that drives it.  Every reply ends with a line starting with ``.`` (``? why``
for a refused command).
"""
from __future__ import annotations

import logging
import shutil
import signal
import subprocess
import tempfile
from array import array
from pathlib import Path

from pstack_tasks.exceptions import SimulationFailed
from pstack_tasks.graph.application import Application
from pstack_tasks.native.instance_file import write_instance
from pstack_tasks.protocol import ENGINE_ERROR_PREFIX

logger = logging.getLogger(__name__)


class DebugEngineProcess:
    """A running debug engine and the files it was started with (removed by :meth:`close`)."""

    def __init__(self, engine: Path, app: Application, type_hash: str, positions: array[int], level: int) -> None:
        """Start ``engine`` on ``app`` loaded as one region; ``positions``: each device's region
        position (0, 1, ... in region order), which the engine's own scheduler keeps apart."""
        self.workdir = Path(tempfile.mkdtemp(prefix="pstack-debug-"))
        region_file = self.workdir / "regions"
        region_file.write_bytes(positions.tobytes())
        instance = self.workdir / "instance"
        with open(instance, "wb") as f:
            write_instance(app, f, array("I", bytes(4 * app.instance.device_count)), type_hash)
        self.error: str | None = None
        self.proc = subprocess.Popen(
            [str(engine), str(instance), str(region_file), str(level), app.file],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)

    def read_reply(self) -> list[str]:
        """The lines of one reply, its final ``.`` line last.

        Raises:
            SimulationFailed: the engine died (a handler crashed or failed an assert): its error line.
        """
        assert self.proc.stdout is not None
        lines = []
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise SimulationFailed(self._death())
            line = line.rstrip("\n")
            lines.append(line)
            if line.startswith((".", "?")):
                return lines

    def command(self, line: str) -> list[str]:
        """Send one command and return its reply lines.

        Ctrl-C while it runs stops the engine's run after its current event (the engine takes
        SIGINT as that order, and replies as usual); a second Ctrl-C, for a handler that never
        returns, ends the engine.
        """
        if self.error is not None:
            raise SimulationFailed(self.error)
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise SimulationFailed(self._death()) from None
        try:
            return self.read_reply()
        except KeyboardInterrupt:
            self.proc.send_signal(signal.SIGINT)  # a Ctrl-C from the terminal reached it already: no harm
        try:
            return self.read_reply()
        except KeyboardInterrupt:
            self.proc.kill()
            self._death()
            self.error = "interrupted twice: the debug engine was ended (a handler that never returns?)"
            raise SimulationFailed(self.error) from None

    def _death(self) -> str:
        """Why the engine ended: its error line, or its exit status."""
        assert self.proc.stderr is not None
        status = self.proc.wait()
        text = self.proc.stderr.read()
        errors = [ln[len(ENGINE_ERROR_PREFIX):] for ln in text.splitlines() if ln.startswith(ENGINE_ERROR_PREFIX)]
        self.error = errors[-1] if errors else f"the debug engine ended with status {status}"
        return self.error

    def close(self) -> None:
        """Stop the engine and remove the session's files (again: nothing to do)."""
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr, self.proc.stdin):
            if stream is not None and not stream.closed:
                stream.close()
        shutil.rmtree(self.workdir, ignore_errors=True)
