"""The persistence API as ``pstack_tasks`` offers it: ``snapshot``, ``checkpoint``, ``checkpoints``,
``restart`` (a :class:`~pstack_tasks.fleet.client.Future` of the restarted process) and ``recoveries``."""
from __future__ import annotations

from pstack_tasks.fleet.client import Future
from pstack_tasks.fleet.persistence import restart as restarting
from pstack_tasks.fleet.persistence.checkpoints import checkpoint, checkpoints
from pstack_tasks.fleet.persistence.recovery import recoveries
from pstack_tasks.fleet.persistence.snapshots import snapshot
from pstack_tasks.fleet.served import Rcon
from pstack_tasks.native.split_cache import RegionMap


def restart(pid: int, checkpoint: int | None = None, rmap: RegionMap = None, rcon: Rcon | None = None) -> Future:
    """Resume ended process ``pid`` from its checkpoint ``checkpoint`` (None: the last), as the same
    pid, on region map ``rmap`` (None: the one it ran with) and pins ``rcon``; its Future.

    Raises:
        ProcessNotFound, ProcessError, ProcessRefused: see :func:`pstack_tasks.fleet.persistence.restart.restart`.
    """
    return Future(restarting.restart(pid, checkpoint, rmap, rcon))


__all__ = ["snapshot", "checkpoint", "checkpoints", "restart", "recoveries"]
