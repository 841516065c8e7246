"""The ``pstack`` command as tests run it: a subprocess, with or without the PSTACK_* environment."""
from __future__ import annotations

import os
import subprocess
import sys

from support.paths import PSTACK

PSTACK_CMD = [sys.executable, "-m", "pstack_tasks.ui.cli.pstack"]
RING = str(PSTACK / "ring-oscillator-01.xml")


def pstack(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*PSTACK_CMD, *args], capture_output=True, text=True, timeout=timeout, env=env)


def bare_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PSTACK_")}
