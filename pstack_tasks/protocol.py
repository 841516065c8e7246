"""The engine protocol's names, defined once: the Redis keys engines of a split share.

Engines, the local runner and the fleet's ledger all name these keys; the C++ runtime builds
the same names from the ``--prefix`` and ``--pid`` it is given (docs/engine-protocol.md).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QueueKeys:
    """The keys of one process's engines: ``<prefix><pid>.<region>`` message lists and the
    termination detector's ``.active``, ``.idle`` and ``.calls``."""

    prefix: str
    pid: int | str

    def queue(self, region: int | str) -> str:
        """List of items (messages and control items) waiting for a region."""
        return f"{self.prefix}{self.pid}.{region}"

    @property
    def active(self) -> str:
        """Count of regions busy or items in flight: zero means the process has ended."""
        return f"{self.prefix}{self.pid}.active"

    @property
    def idle(self) -> str:
        """The OnHardwareIdle round state shared by the regions."""
        return f"{self.prefix}{self.pid}.idle"

    @property
    def calls(self) -> str:
        """The number of the last IDLE script call that ran (its replies are skipped)."""
        return f"{self.prefix}{self.pid}.calls"

    def all(self, regions: list[int]) -> list[str]:
        """Every key of the process, for resetting before a run and deleting after it."""
        return [self.queue(r) for r in regions] + [self.active, self.idle, self.calls]
