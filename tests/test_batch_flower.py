"""A batch started and read through Flower's HTTP API (``pstack.batch``, ``pstack.batch_summary``),
as an operator's curl would (docs/batches.md, "Through Flower").  The module starts a real
Flower of its own on the session fleet (the ``flower`` fixture of tests/test_flower.py)."""
from __future__ import annotations

import json

from test_flower import FlowerClient, flower  # noqa: F401  (the module's Flower)

from support.fleet import WorkerFleet
from support.paths import DATA

SEEDED = DATA / "batch" / "seeded-ring.xml"


def test_a_batch_started_through_flower_completes_and_its_summary_is_read_there(
        flower: FlowerClient, on_fleet: WorkerFleet) -> None:  # noqa: F811
    started = flower.result(flower.apply("pstack.batch", SEEDED.read_text(), grid={"type:node.limit": [2, 4]},
                                         runs=2, seeds=[5]))
    assert started["state"] == "SUCCESS", started
    batch_id, total = started["result"]["batch"], started["result"]["total"]
    assert total == 4

    answer = flower.result(flower.apply("pstack.batch_summary", batch_id, wait=60), timeout=70)
    assert answer["state"] == "SUCCESS", answer
    summary = answer["result"]
    assert summary["id"] == batch_id and summary["state"] == "Done" and summary["counts"]["Done"] == 4
    assert summary["graph_type"] == "seeded_ring" and summary["grid"] == {"type:node.limit": [2, 4]}
    rows = summary["rows"]
    assert [r["type:node.limit"] for r in rows] == [2, 2, 4, 4] and {r["seed"] for r in rows} == {5}
    assert all(r["Delivered messages"] == 5 * r["type:node.limit"] for r in rows)


def test_a_bad_grid_through_flower_fails_naming_the_key(flower: FlowerClient, on_fleet: WorkerFleet  # noqa: F811
                                                        ) -> None:
    failed = flower.result(flower.apply("pstack.batch", str(SEEDED), grid={"type:node.limt": [1]}))
    assert failed["state"] == "FAILURE" and "override 'type:node.limt'" in json.dumps(failed["result"])
    unknown = flower.result(flower.apply("pstack.batch_summary", 987654))
    assert unknown["state"] == "FAILURE" and "no batch 987654" in json.dumps(unknown["result"])
