"""The native psim engine: generated C++ per graph type, with the runtime in ``runtime/``."""
from __future__ import annotations

from pstack_tasks.native.simulate import run_engine

__all__ = ["run_engine"]
