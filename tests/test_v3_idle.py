"""v3 OnHardwareIdle: rounds at quiescence, 10 in a row that wake nothing end the run; in a split
every region takes part in every round (tests/data/v3/idle.xml)."""
from __future__ import annotations

from pathlib import Path

import pytest

from pstack_tasks.native.simulate import psim
from support.apps import V3_DATA, split, v3_variant
from support.paths import KEY_PREFIX

IDLE = V3_DATA / "idle.xml"
NODES = ["n0", "n1", "n2", "n3"]


@pytest.mark.parametrize("regions", [1, 2, 4])
def test_rounds_repeat_while_they_wake_and_stop_after_ten_idle_ones(regions: int, redis_url: str) -> None:
    rmap = split(NODES, regions) if regions > 1 else None
    result = psim(IDLE, rmap, {"quiet": True, "redis_url": redis_url, "prefix": KEY_PREFIX})
    # 3 rounds wake every node (one send each), then 10 rounds wake nothing
    for n in NODES:
        assert result["states"][n] == {"rounds": 13, "pending": 0, "got": 3, "last": 3}
    m = result["metrics"]
    assert m["Hardware idle rounds"] == 13
    assert (m["Sent messages"], m["Delivered messages"]) == (12, 12)
    assert (m["Exit reason"], m["Exit code"]) == ("quiescence", 1)


@pytest.mark.parametrize("regions", [1, 2])
def test_an_idle_handler_can_end_the_run(tmp_path: Path, regions: int, redis_url: str) -> None:
    app = v3_variant("idle.xml", "deviceState->rounds++;",
                     'deviceState->rounds++; if (deviceState->rounds == 2) '
                     'handler_log(0, "_HANDLER_EXIT_SUCCESS_9be65737_");',
                     tmp_path)
    rmap = split(NODES, regions) if regions > 1 else None
    result = psim(app, rmap, {"quiet": True, "redis_url": redis_url, "prefix": KEY_PREFIX})
    m = result["metrics"]
    assert (m["Exit reason"], m["Exit code"]) == ("handler_exit", 0)
    # the round that exits still runs on every device, as in graph_schema's simulators
    assert all(result["states"][n]["rounds"] == 2 for n in NODES)
