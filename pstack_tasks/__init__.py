"""pstack-celery: simulate POETS graph applications, alone or split over a fleet of workers."""
from __future__ import annotations

from .exceptions import (BuildError, ConfigurationError, EngineError, GraphError, PstackError, RedisUnavailable,
                         SimulationFailed)
from .simulate import psim, run_engine

__all__ = [
    # simulation
    "psim", "run_engine",
    # errors
    "PstackError", "ConfigurationError", "GraphError", "BuildError", "EngineError", "SimulationFailed",
    "RedisUnavailable",
]
