"""Automatic recovery of a real v3 corpus application (issue 16's second "done when" case):
the POETS corpus's clock_tree_4_4 (341 devices, a stable reference) as a 2-region process taking
a checkpoint every second; one region's worker is SIGKILLed mid-run after a checkpoint, a
replacement joins, and the process goes Recovering, then Done with exactly the reference result.

The corpus instance (``max_ticks`` 100) ends in a fraction of a second, too fast to kill
mid-run, so the test runs the same instance with the graph property overridden
(``graph:max_ticks``, graph/overrides.py): 8,000 clock ticks, about 6 s on two regions.  The
reference is then (a) the corpus's own outcome, checked for the instance as shipped (state hash,
deliveries), (b) the corpus's rule scaled to the longer run (the root's ``cycle`` reaches
``max_ticks``; 680 deliveries per tick after the first, as 67,320 = 680 × 99 in the corpus), and
(c) every device's state from psim's uninterrupted run of the same overridden instance.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from pstack_tasks.fleet.client import block, run, status
from pstack_tasks.fleet.persistence.checkpoints import checkpoints
from pstack_tasks.graph import loader
from pstack_tasks.native.simulate import psim
from support.apps import split
from support.faults import wait_for
from support.fleet import WorkerFleet
from support.paths import CORPUS

APP = CORPUS / "clock_tree_4_4.xml"
TICKS = 8000
pytestmark = pytest.mark.skipif(not APP.is_file(), reason=f"no POETS corpus at {CORPUS}")


def expected() -> dict[str, Any]:
    return json.loads((CORPUS / "expected_outcomes.json").read_text())["clock_tree_4_4"]


def state_hash(states: dict[str, Any]) -> str:
    """The corpus's ``state_sha256_json``."""
    return hashlib.sha256(json.dumps(states, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def test_the_shipped_instance_gives_the_corpus_reference() -> None:
    """The reference the longer run scales: psim's run of clock_tree_4_4 as shipped is the corpus's."""
    want = expected()
    assert want["full_state_stable"] and want["deliveries_stable"]
    result = psim(str(APP), options={"quiet": True, "full_state": True})
    assert state_hash(result["states"]) == want["state_sha256_json"]
    assert result["metrics"]["Delivered messages"] == want["deliveries"] == 680 * (100 - 1)


def test_clock_tree_recovers_from_a_worker_killed_mid_run_to_the_uninterrupted_result(
        two_workers: WorkerFleet) -> None:
    overrides = {"graph:max_ticks": TICKS}
    reference = psim(str(APP), options={"quiet": True, "overrides": overrides})
    assert reference["states"]["root"]["cycle"] == TICKS
    assert reference["metrics"]["Delivered messages"] == 680 * (TICKS - 1)
    f = run(APP, rmap=split(loader.load(APP).instance.names, 2), async_=True, checkpoint_every=1,
            overrides=overrides)
    wait_for(lambda: len(checkpoints(f.pid)) >= 1, 60, "a first checkpoint")
    assert status(f.pid)["state"] == "Running", "the run ended before the kill: raise TICKS"
    victim = "w2" if status(f.pid)["hosts"].get("1") == "w2" else "w1"
    two_workers.fleet.kill(f"psim@{victim}")
    wait_for(lambda: status(f.pid)["state"] in ("Recovering", "Failed", "Done"), 60, "the process recovering")
    assert status(f.pid)["state"] == "Recovering", status(f.pid)["reason"]  # one slot left: it waits
    two_workers.fleet.start("psim", "w3", 1)
    result = block(f, timeout=180)
    m = result["metrics"]
    assert (m["Exit reason"], m["Exit code"]) == ("handler_exit", 0), m
    assert m["Delivered messages"] == 680 * (TICKS - 1)
    assert result["states"] == reference["states"]
    (note,) = status(f.pid)["recoveries"]
    assert victim in note["reason"] and note["checkpoint"] >= 1
