"""pcli's built-ins for persistent processes: snapshot, checkpoint, checkpoints, restart, recoveries
(:mod:`pstack_tasks.fleet.persistence.api`; docs/persistence.md)."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pstack_tasks.fleet.client import Future
from pstack_tasks.fleet.persistence import api


def snapshot(pid: int, full_state: bool = False) -> dict[str, Any]:
    """A running process's states, messages in flight and counters, taken at one barrier: snapshot(7)."""
    return api.snapshot(int(pid), full_state=full_state)


def checkpoint(pid: int) -> dict[str, Any]:
    """Take a checkpoint of a running process now: checkpoint(7)."""
    return api.checkpoint(int(pid))


def checkpoints(pid: int) -> list[dict[str, Any]]:
    """A process's checkpoints, oldest first: id, time, size, where."""
    return api.checkpoints(int(pid))


def restart(pid: int, checkpoint: int | None = None, rmap: Mapping[str, int] | str | None = None) -> Future:
    """Resume an ended process from a checkpoint as the same pid: block(restart(7, rmap={"n1": 1}))."""
    return api.restart(int(pid), checkpoint, rmap)


def recoveries(pid: int) -> list[dict[str, Any]]:
    """A process's automatic recoveries from lost workers, oldest first: time, reason, checkpoint."""
    return api.recoveries(int(pid))


PERSIST_BUILTINS: dict[str, Callable[..., Any]] = {"snapshot": snapshot, "checkpoint": checkpoint,
                                                   "checkpoints": checkpoints, "restart": restart,
                                                   "recoveries": recoveries}

__all__ = ["PERSIST_BUILTINS"]
