"""Time spent per phase of a run (graph type parse, content hash, native pack, ...), logged at
debug level (``psim -d``): where a slow start-up goes is then seen without a profiler."""
from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

logger = logging.getLogger("pstack_tasks.phases")


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Log ``phase <name>: <seconds>`` when the block ends (only when debug logging is on)."""
    if not logger.isEnabledFor(logging.DEBUG):
        yield
        return
    start = time.monotonic()
    try:
        yield
    finally:
        logger.debug("phase %s: %.3f s", name, time.monotonic() - start)
