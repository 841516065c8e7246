"""The application ``pstack doctor`` and ``pstack loadtest`` run when given none: pstack's ring
oscillator, shipped inside the package (``fleet/data/``) so an installed copy can check a fleet
without a clone of the repository.

Four devices pass a token round a ring ten times: 40 messages delivered, exit code 0, in any
region split.  Split in two (``n1`` alone in region 1) every message between n0, n1 and n2
crosses Redis, so a Done run with 40 delivered proves engines, relays, Redis and the merge work.
"""
from __future__ import annotations

from importlib import resources
from typing import Any

#: the packaged file (pstack's tests/data/pstack/ring-oscillator-01.xml)
RING_FILE = "ring-oscillator-01.xml"
#: the split the checks use: two regions, every hop of the ring but n2->n3 and n3->n0 between them
RING_RMAP: dict[str, int] = {"n1": 1}
#: what every correct run of it delivers
RING_DELIVERED = 40


def ring_oscillator() -> str:
    """The ring oscillator's XML text."""
    return resources.files("pstack_tasks.fleet").joinpath("data").joinpath(RING_FILE).read_text()


def delivered(result: dict[str, Any]) -> int | None:
    """The "Delivered messages" of a process's result (None if it has none)."""
    value = result.get("metrics", {}).get("Delivered messages")
    return None if value is None else int(value)


__all__ = ["RING_FILE", "RING_RMAP", "RING_DELIVERED", "ring_oscillator", "delivered"]
