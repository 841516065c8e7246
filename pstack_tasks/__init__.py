"""pstack-celery: simulate POETS graph applications, alone or split over a fleet of workers.

``psim`` runs on this machine; ``submit, run, block, ps, kill, status, engines`` work with processes
on the worker fleet (they import Celery on first use, so psim alone stays light).
"""
from __future__ import annotations

from typing import Any

from pstack_tasks.exceptions import (
    BuildError,
    ConfigurationError,
    EngineError,
    GraphError,
    PermissionDenied,
    ProcessError,
    ProcessFailed,
    ProcessNotFound,
    ProcessRefused,
    PstackError,
    RedisUnavailable,
    RegionStopped,
    ServiceUnavailable,
    SimulationFailed,
)
from pstack_tasks.native.simulate import psim, run_engine

_PROCESS_API = ("submit", "run", "block", "ps", "kill", "status", "engines", "Future")

__all__ = [
    # simulation
    "psim", "run_engine",
    # processes on the fleet
    *_PROCESS_API,
    # errors
    "PstackError", "ConfigurationError", "GraphError", "BuildError", "EngineError", "SimulationFailed",
    "ServiceUnavailable", "RedisUnavailable", "RegionStopped", "ProcessError", "ProcessRefused", "ProcessNotFound",
    "ProcessFailed", "PermissionDenied",
]


def __getattr__(name: str) -> Any:
    if name in _PROCESS_API:
        from pstack_tasks.fleet import client
        return getattr(client, name)
    raise AttributeError(f"module 'pstack_tasks' has no attribute {name!r}")
