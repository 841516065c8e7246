"""A real terminal for tests: one command in a tmux pane on a private tmux server.

Each :class:`Terminal` runs its own tmux server (``tmux -L <unique socket> -f /dev/null``), so
tests never touch a user's tmux and a user's config never changes what the test sees. The
pane stays after its command exits (``remain-on-exit``) so that a test can ask how it ended.
"""
from __future__ import annotations

import re
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence

#: the tmux sockets this test process started (other test runs on the machine have their own)
STARTED: list[str] = []


class Terminal:
    """``with Terminal(cmd, env) as t: t.send("ps()"); t.wait_for(r"Running")``; the server dies on exit."""

    def __init__(self, cmd: Sequence[str], env: Mapping[str, str], width: int = 200, height: int = 50,
                 cwd: str | None = None) -> None:
        self.socket = f"pstest-{uuid.uuid4().hex[:10]}"
        STARTED.append(self.socket)
        self.env = dict(env)
        command = " ".join(_quote(c) for c in cmd)
        self.tmux("new-session", "-d", "-x", str(width), "-y", str(height), "-s", "t", command, ";",
                  "set-option", "-t", "t", "remain-on-exit", "on", cwd=cwd)

    def tmux(self, *args: str, cwd: str | None = None) -> str:
        p = subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", *args], capture_output=True, text=True,
                           env=self.env, cwd=cwd, timeout=10)
        if p.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)}: {p.stderr.strip()}")
        return p.stdout

    def screen(self, escapes: bool = False) -> str:
        """Everything the pane has shown: its scrollback and the visible screen (with colour codes if asked).

        Lines lose their trailing blanks (``-J`` keeps them, and rich pads a table's last column),
        so that a pattern can end a line with ``$`` whatever the column widths.
        """
        text = self.tmux("capture-pane", "-p", "-J", "-S", "-", "-t", "t", *(["-e"] if escapes else []))
        return "\n".join(line.rstrip() for line in text.splitlines())

    def send(self, text: str, enter: bool = True) -> None:
        self.tmux("send-keys", "-t", "t", "-l", text)
        if enter:
            self.tmux("send-keys", "-t", "t", "Enter")

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "t", *keys)

    def wait_for(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        """Poll the screen until the regex matches (multi-line mode); fail showing the screen."""
        rx = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            m = rx.search(text)
            if m:
                return m
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} did not appear within {timeout:g} s; the screen:\n{text}")
            time.sleep(0.1)

    def exit_status(self) -> int | None:
        """The command's exit status once it has ended, else None."""
        dead, _, status = self.tmux("display-message", "-p", "-t", "t", "#{pane_dead}:#{pane_dead_status}") \
            .strip().partition(":")
        return int(status or 0) if dead == "1" else None

    def wait_exit(self, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.exit_status()
            if status is not None:
                return status
            time.sleep(0.1)
        raise AssertionError(f"the command did not exit within {timeout:g} s; the screen:\n{self.screen()}")

    def close(self, timeout: float = 10.0) -> None:
        """Kill the tmux server and wait until its process has gone."""
        subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", "kill-server"], capture_output=True,
                       env=self.env, timeout=10)
        deadline = time.monotonic() + timeout
        while tmux_servers([self.socket]) and time.monotonic() < deadline:
            time.sleep(0.05)

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _quote(arg: str) -> str:
    import shlex
    return shlex.quote(arg)


def tmux_servers(sockets: Sequence[str] = STARTED) -> list[str]:
    """The tmux servers of ``sockets`` (by default every one this process started) still running."""
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines()
            if line.startswith("tmux") and any(f"-L {s} " in line for s in sockets)]
