"""The POETS corpus (real graph-schema v3 apps with reference outcomes) in 1, 2 and 4 regions.

Each instance is checked for what /work/shared/data/poets-corpus/README.md says must hold:
the whole-state hash where the reference calls it stable, the apps' own self-check markers,
and counts where they do not depend on the schedule.  Region splits are random but seeded.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import random
from pathlib import Path
from typing import Any

import pytest

from pstack_tasks.graph import loader
from pstack_tasks.graph.values import Packer
from pstack_tasks.native.simulate import psim
from support.paths import CORPUS as SHARED_CORPUS
from support.paths import KEY_PREFIX

CORPUS = Path(os.environ["PSTACK_POETS_CORPUS"]) if os.environ.get("PSTACK_POETS_CORPUS") else SHARED_CORPUS
pytestmark = pytest.mark.skipif(not (CORPUS / "expected_outcomes.json").is_file(),
                                reason=f"no POETS corpus at {CORPUS} (set PSTACK_POETS_CORPUS)")
SPLITS = [1, 2, 4]


def expected(name: str) -> dict[str, Any]:
    return json.loads((CORPUS / "expected_outcomes.json").read_text())[name]


def reference_states(name: str) -> dict[str, Any]:
    return json.loads((CORPUS / "reference-states" / f"{name}.json").read_text())


def state_hash(states: dict[str, Any]) -> str:
    """The corpus's ``state_sha256_json``."""
    return hashlib.sha256(json.dumps(states, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def run(name: str, regions: int, redis_url: str, **options: Any) -> dict[str, Any]:
    """Run a corpus instance, split at random (seed 7) over ``regions`` regions."""
    path = CORPUS / f"{name}.xml"
    rmap = None
    if regions > 1:
        names = loader.load(path).instance.names
        rnd = random.Random(7)
        rmap = {d: rnd.randrange(regions) for d in names}
        rmap[names[0]] = 0  # every region in use: at least regions 0 and one other
        rmap[names[-1]] = regions - 1
    opts = {"quiet": True, "full_state": True, "redis_url": redis_url, "prefix": KEY_PREFIX, **options}
    return psim(path, rmap, opts)


def graph_properties(name: str) -> dict[str, Any]:
    app = loader.load(CORPUS / f"{name}.xml")
    return Packer(app.graph_type.properties).unpack(app.instance.graph_properties)


def assert_success(result: dict[str, Any]) -> None:
    """The app logged _HANDLER_EXIT_SUCCESS_9be65737_ (its self-check passed)."""
    m = result["metrics"]
    assert (m["Exit reason"], m["Exit code"]) == ("handler_exit", 0), m


@pytest.mark.parametrize("regions", SPLITS)
def test_hello_world_ends_by_quiescence_after_idle_rounds(regions: int, redis_url: str) -> None:
    if regions > 1:
        pytest.skip("a single device: nothing to split")
    result = run("hello_world_inst", regions, redis_url)
    m = result["metrics"]
    assert result["states"]["n59"]["count"] == 10
    assert (m["Sent messages"], m["Delivered messages"]) == (10, 0)
    # graph_schema's simulators report a run that only stops by quiescence as status 1
    assert (m["Exit reason"], m["Exit code"]) == ("quiescence", 1)


@pytest.mark.parametrize("regions", SPLITS)
@pytest.mark.parametrize("name", ["clock_tree_3_2_10", "clock_tree_4_4", "amg_poisson_2_2"])
def test_stable_apps_match_the_reference_state_and_counts(name: str, regions: int, redis_url: str) -> None:
    exp = expected(name)
    result = run(name, regions, redis_url)
    assert_success(result)
    m = result["metrics"]
    assert len(result["states"]) == exp["num_devices"]
    assert m["Delivered messages"] == exp["deliveries"]
    assert (m["Sent messages"], m["Cancelled sends"]) == (exp["sends"], exp["send_aborts"])
    assert state_hash(result["states"]) == exp["state_sha256_json"]


def test_clock_tree_root_counts_ten_cycles(redis_url: str) -> None:
    assert run("clock_tree_3_2_10", 1, redis_url)["states"]["root"]["cycle"] == 10


@pytest.mark.parametrize("regions", SPLITS)
def test_amg_poisson_4_4_values_within_tolerance(regions: int, redis_url: str) -> None:
    exp = expected("amg_poisson_4_4")
    result = run("amg_poisson_4_4", regions, redis_url)
    assert_success(result)
    assert result["metrics"]["Delivered messages"] == exp["deliveries"]
    refs = reference_states("amg_poisson_4_4")
    # float32 sums whose order follows the schedule: compare against the scale of the solution
    scale = max(abs(v) for ref in refs.values() for v in ref.values() if isinstance(v, float))
    for dev, ref in refs.items():
        for member, value in ref.items():
            got = result["states"][dev][member]
            if isinstance(value, float):
                assert math.isclose(got, value, rel_tol=1e-4, abs_tol=1e-5 * scale), (dev, member, got, value)
            else:
                assert got == value, (dev, member)


@pytest.mark.parametrize("regions", SPLITS)
@pytest.mark.parametrize("name", ["apsp_2_2", "apsp_8_2", "apsp_11_3"])
def test_apsp_checks_its_own_sums(name: str, regions: int, redis_url: str) -> None:
    result = run(name, regions, redis_url)
    assert_success(result)
    ref = reference_states(name)["controller"]
    got = result["states"]["controller"]
    assert (got["sumMaxDist"], got["sumSumDist"]) == (ref["sumMaxDist"], ref["sumSumDist"])


@pytest.mark.parametrize("regions", SPLITS)
def test_apsp_vec_barrier_needs_three_hardware_idle_barriers(regions: int, redis_url: str) -> None:
    exp = expected("apsp_vec_barrier_16_4")
    result = run("apsp_vec_barrier_16_4", regions, redis_url)
    assert_success(result)
    collector = result["states"]["collector"]
    assert (collector["sum_max_distances"], collector["sum_sum_distances"]) == (312, 2368)
    assert result["metrics"]["Hardware idle rounds"] == exp["hardware_idle_rounds"]
    assert state_hash(result["states"]) == exp["state_sha256_json"]


@pytest.mark.parametrize("regions", SPLITS)
@pytest.mark.parametrize("name", ["ising_spin_fix_3_1", "ising_spin_fix_8_2_20"])
def test_ising_spin_fix_every_cell_correct(name: str, regions: int, redis_url: str) -> None:
    result = run(name, regions, redis_url)
    assert_success(result)
    states = result["states"]
    exits = [s for s in states.values() if "num_correct" in s]
    assert len(exits) == 1
    assert exits[0]["num_correct"] == len(states) - 1
    assert exits[0]["num_failed"] == 0


@pytest.mark.parametrize("regions", SPLITS)
def test_betweeness_centrality_with_indexed_sends(regions: int, redis_url: str) -> None:
    result = run("betweeness_centrality_16_16_2_2", regions, redis_url)
    assert_success(result)
    m = result["metrics"]
    # each walk step is one indexed send to exactly one neighbour
    assert m["Sent messages"] == m["Delivered messages"] > 0


@pytest.mark.parametrize("regions", SPLITS)
@pytest.mark.parametrize("name", ["gals_heat_fix_4", "gals_heat_fix_8_20", "gals_heat_6"])
def test_gals_heat_every_cell_reaches_max_time(name: str, regions: int, redis_url: str) -> None:
    result = run(name, regions, redis_url)
    assert_success(result)
    max_time = graph_properties(name)["maxTime"]
    cells = [s for s in result["states"].values() if "t" in s]
    assert cells and all(s["t"] == max_time + 1 for s in cells)


@pytest.mark.parametrize("regions", [1, 2])
def test_ising_spin_succeeds(regions: int, redis_url: str) -> None:
    assert_success(run("ising_spin_8_2", regions, redis_url))


@pytest.mark.parametrize("regions", [1, 2])
@pytest.mark.parametrize("name", ["firefly_sync_one_to_one_v2", "firefly_swarms2_20ffs_8nns_v3conv"])
def test_fireflies_stop_on_limits(name: str, regions: int, redis_url: str) -> None:
    result = run(name, regions, redis_url, max_steps=20_000)
    assert (result["metrics"]["Exit reason"], result["metrics"]["Exit code"]) == ("max-steps", 1)
    result = run(name, regions, redis_url, time_limit=0.3, states=False)
    assert (result["metrics"]["Exit reason"], result["metrics"]["Exit code"]) == ("time-limit", 1)


def test_externals_are_read_as_external_device_types() -> None:
    """ExternalType/ExtI parse (served by Python engines: docs/debugging.md, "Externals")."""
    app = loader.load(CORPUS / "test_external_ping_pong_graph_inst_1.xml")
    assert {d.id: d.external for d in app.graph_type.device_types} == {
        "reflector": False, "outsider": True, "__halt_device_type__": True}
    assert app.instance.names == ["outsider_0", "insider_0", "__halt__"]


def test_bench_generator_rebuilds_a_corpus_instance(tmp_path: Path) -> None:
    """bench/corpus_gen.py builds instances as the corpus does: same size, same outcome."""
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    import corpus_gen
    path = tmp_path / "clock.xml"
    with open(path, "w") as f:
        corpus_gen.clock_tree(f, 3, 2, 10)
    result = psim(path, options={"quiet": True})
    exp = expected("clock_tree_3_2_10")
    assert result["metrics"]["Delivered messages"] == exp["deliveries"]
    assert state_hash(result["states"]) == exp["state_sha256_json"]
