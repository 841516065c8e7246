"""The live line ``pstack run`` shows on stderr while a process runs (rich's status spinner)."""
from __future__ import annotations

import sys
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.status import Status


def describe(status: dict[str, Any]) -> str:
    """One line for a process: state, regions, messages delivered so far, elapsed."""
    regions = len(status.get("regions") or [])
    delivered = int(status.get("delivered") or 0)
    elapsed = status.get("elapsed") or 0.0
    return (f"process {status.get('pid')} {status.get('state')}: {regions} region{'s' * (regions != 1)}, "
            f"{delivered:,} messages delivered, {elapsed:.1f} s")


class ProgressLine:
    """A context manager whose ``update(status)`` refreshes one spinner line on stderr."""

    def __init__(self) -> None:
        # force_terminal only when stderr is one: --progress into a file still gets plain lines
        self.console = Console(file=sys.stderr, highlight=False)
        self.status = Status("submitting ...", console=self.console)
        self.last = ""

    def __enter__(self) -> ProgressLine:
        if self.console.is_terminal:
            self.status.start()
        return self

    def update(self, status: dict[str, Any]) -> None:
        line = describe(status)
        if line == self.last:
            return
        self.last = line
        if self.console.is_terminal:
            self.status.update(line)
        else:
            print(line, file=sys.stderr, flush=True)

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        if self.console.is_terminal:
            self.status.stop()
