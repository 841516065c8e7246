"""pstack-celery: simulate POETS graph applications, alone or split over a fleet of workers.

``psim`` runs on this machine; ``submit, run, block, ps, kill, status, engines`` work with processes
on the worker fleet, ``batch`` and ``batches`` with batches of them (``plot_batch`` draws one),
``inspect`` and ``inject`` look into and feed running ones, ``draw`` pictures an application, and
``debug`` steps one through its handlers.  They are imported on first use (module ``__getattr__``): the ``psim`` and
``pstack`` commands import this package first, and each imports only what its run needs
(docs/psim.md, "Start-up").
"""
from __future__ import annotations

from typing import Any

from pstack_tasks.exceptions import (
    BatchNotFound,
    BuildError,
    ConfigurationError,
    DebugError,
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

_PROCESS_API = ("submit", "run", "block", "ps", "kill", "status", "engines", "Future")
_SIMULATION_API = ("psim", "run_engine")
_ENGINE_API = ("Engine",)
_LIVE_API = ("inspect", "inject")
_DRAW_API = ("draw",)
_DEBUG_API = ("debug",)
_BATCH_API = ("batch", "batches", "Batch")
_PLOT_API = ("plot_batch",)
_PERSIST_API = ("snapshot", "checkpoint", "checkpoints", "restart", "recoveries")

__all__ = [
    # simulation
    *_SIMULATION_API,
    # processes on the fleet
    *_PROCESS_API,
    *_ENGINE_API,
    # batches of runs over a grid of overrides, and their plots
    *_BATCH_API, *_PLOT_API,
    # looking into running processes, and pictures of applications
    *_LIVE_API, *_DRAW_API,
    # the step debugger
    *_DEBUG_API,
    # persistent processes (docs/persistence.md)
    *_PERSIST_API,
    # errors
    "PstackError", "ConfigurationError", "GraphError", "BuildError", "EngineError", "SimulationFailed",
    "ServiceUnavailable", "RedisUnavailable", "RegionStopped", "ProcessError", "ProcessRefused", "ProcessNotFound",
    "ProcessFailed", "PermissionDenied", "BatchNotFound", "DebugError",
]


#: where each lazily imported name lives
_LAZY_MODULES: dict[str, str] = {
    **dict.fromkeys(_SIMULATION_API, "pstack_tasks.native.simulate"),
    **dict.fromkeys(_PROCESS_API, "pstack_tasks.fleet.client"),
    **dict.fromkeys(_ENGINE_API, "pstack_tasks.fleet.pyengine.engine"),
    **dict.fromkeys(_LIVE_API, "pstack_tasks.fleet.inspection"),
    **dict.fromkeys(_DEBUG_API, "pstack_tasks.native.debug"),
    **dict.fromkeys(_BATCH_API, "pstack_tasks.fleet.batches"),
    **dict.fromkeys(_PLOT_API, "pstack_tasks.ui.batch_plot"),
    **dict.fromkeys(_PERSIST_API, "pstack_tasks.fleet.persistence.api"),
    **dict.fromkeys(_DRAW_API, "pstack_tasks.ui.drawing"),
}


def __getattr__(name: str) -> Any:
    module = _LAZY_MODULES.get(name)
    if module is None:
        raise AttributeError(f"module 'pstack_tasks' has no attribute {name!r}")
    import importlib
    return getattr(importlib.import_module(module), name)
