"""Automatic partitioning: METIS's split against the naive ones (balance, cut, determinism), its
cache, and ``regions=K`` through psim, its command line and the fleet."""
from __future__ import annotations

import json
import subprocess
import sys
from array import array
from pathlib import Path

import pytest

from pstack_tasks import psim
from pstack_tasks.exceptions import ConfigurationError
from pstack_tasks.fleet.client import run, status
from pstack_tasks.graph.application import NO_SEND_INDEX, Instance
from pstack_tasks.graph.partition import auto_regions, combine, measure, split
from pstack_tasks.native.split_cache import cached_split, split_dir
from support.commands import bare_env, pstack
from support.fleet import WorkerFleet
from support.paths import CORPUS

#: corpus apps whose deliveries and final states do not depend on the schedule
STABLE = ["clock_tree_4_4.xml", "amg_poisson_2_2.xml", "clock_tree_3_2_10.xml"]


def instance(n: int, pins: list[tuple[int, list[int]]]) -> Instance:
    """An instance of ``n`` devices whose edges are (source, [destinations]) pins."""
    edges = array("I")
    for src, dests in pins:
        for dst in dests:
            edges.extend((src, 0, dst, 0, 0, NO_SEND_INDEX))
    inst = Instance()
    inst.names.extend(f"d{i}" for i in range(n))
    inst.edges.extend(edges)
    return inst


def grid(w: int, h: int) -> Instance:
    """A heat-like grid, row-major ids: each cell sends on one pin to its 4 neighbours."""
    pins = []
    for y in range(h):
        for x in range(w):
            near = [(x + dx, y + dy) for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1))]
            pins.append((y * w + x, [b * w + a for a, b in near if 0 <= a < w and 0 <= b < h]))
    return instance(w * h, pins)


def tree(fanout: int, depth: int) -> Instance:
    """A clock tree, breadth-first ids: each node sends to its children, each child to its parent."""
    n = sum(fanout ** d for d in range(depth + 1))
    pins = [(p, [c for c in range(p * fanout + 1, p * fanout + fanout + 1) if c < n]) for p in range(n)]
    pins += [(c, [(c - 1) // fanout]) for c in range(1, n)]
    return instance(n, [(s, d) for s, d in pins if d])


@pytest.mark.parametrize("k", [2, 3, 4, 7])
def test_a_metis_split_of_a_grid_is_balanced_within_a_tenth(k: int) -> None:
    parts, report = split(grid(40, 40), k)
    sizes = [list(parts).count(r) for r in range(k)]
    assert max(sizes) <= 1.1 * 1600 / k and min(sizes) > 0
    assert report.balance == pytest.approx(max(sizes) / (1600 / k), abs=1e-3)


@pytest.mark.parametrize(("inst", "k"), [(grid(40, 40), 4), (grid(40, 40), 8), (tree(4, 5), 2), (tree(4, 5), 4)],
                         ids=["grid-4", "grid-8", "tree-2", "tree-4"])
def test_metis_cuts_far_fewer_edges_than_round_robin_and_contiguous_ids(inst: Instance, k: int) -> None:
    metis = split(inst, k)[1].cut_edges
    assert metis < 0.8 * split(inst, k, "contiguous")[1].cut_edges
    assert metis < 0.2 * split(inst, k, "round-robin")[1].cut_edges


def test_a_hub_goes_with_most_of_its_neighbours_and_does_not_bend_the_split() -> None:
    base = grid(30, 30)
    hub = base.device_count
    inst = instance(hub + 1, [])
    inst.edges.extend(base.edges)
    for d in range(hub):  # every cell reports to an exit node, as gals_heat's do
        inst.edges.extend((d, 1, hub, 0, 0, NO_SEND_INDEX))
    parts, report = split(inst, 2)
    grid_cut = measure(base, parts[:hub], 2).cut_edges
    assert grid_cut <= 2 * split(base, 2, "contiguous")[1].cut_edges  # about one straight line across
    assert report.cut_edges == grid_cut + sum(1 for d in range(hub) if parts[d] != parts[hub])


def test_the_same_instance_gives_the_same_split_in_another_process() -> None:
    here = split(tree(3, 6), 4)[0].tolist()
    code = ("import json, sys; sys.path.insert(0, 'tests'); from test_partition import split, tree; "
            "print(json.dumps(split(tree(3, 6), 4)[0].tolist()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parent.parent)
    assert json.loads(out.stdout) == here


def test_naive_splits_are_what_they_say() -> None:
    assert split(grid(3, 3), 2, "round-robin")[0].tolist() == [0, 1, 0, 1, 0, 1, 0, 1, 0]
    assert split(grid(3, 3), 2, "contiguous")[0].tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1]
    assert split(grid(3, 3), 1)[0].tolist() == [0] * 9


def test_a_split_is_computed_once_then_read_from_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PSTACK_CACHE_DIR", str(tmp_path))
    inst = grid(20, 20)
    first, report = cached_split(inst, 3)
    again, cached = cached_split(inst, 3)
    assert not report.cached and cached.cached
    assert again == first and cached.cut_edges == report.cut_edges and cached.balance == report.balance
    assert len(list(split_dir().glob("*.split"))) == 1
    other = cached_split(grid(20, 21), 3)[1]  # another instance: its own entry
    assert not other.cached and len(list(split_dir().glob("*.split"))) == 2


def test_a_damaged_cache_file_is_computed_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PSTACK_CACHE_DIR", str(tmp_path))
    inst = grid(10, 10)
    first = cached_split(inst, 2)[0]
    (path,) = split_dir().glob("*.split")
    path.write_bytes(path.read_bytes()[:-4])
    parts, report = cached_split(inst, 2)
    assert parts == first and not report.cached


def test_concurrent_runs_compute_one_split_and_agree(tmp_path: Path) -> None:
    code = ("import sys; sys.path.insert(0, 'tests'); from test_partition import grid; "
            "from pstack_tasks.native.split_cache import cached_split; "
            "print(cached_split(grid(40, 40), 4)[0].tolist())")
    env = {"PSTACK_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env,
                              cwd=Path(__file__).parent.parent) for _ in range(3)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs) and len(set(outs)) == 1
    assert [p.name for p in (tmp_path / "splits").iterdir() if not p.name.endswith(".lock")] == \
        [next((tmp_path / "splits").glob("*.split")).name]


@pytest.mark.parametrize("bad", [0, -1, True, 2.0, "2"])
def test_k_must_be_an_integer_of_at_least_one(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="regions must be an integer >= 1"):
        combine(None, bad)  # type: ignore[arg-type]


def test_more_regions_than_devices_and_rmap_with_regions_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="9 regions asked for, but the graph has only 4 devices"):
        split(grid(2, 2), 9)
    with pytest.raises(ConfigurationError, match="not both"):
        combine({"n1": 1}, 2)
    assert combine({}, 2) == "auto:2" and combine({"n1": 1}, None) == {"n1": 1}
    assert auto_regions("auto:3") == 3 and auto_regions({"n1": 1}) is None
    for text in ("auto:x", "auto:0", "metis:2"):
        with pytest.raises(ConfigurationError, match="region map"):
            auto_regions(text)


@pytest.mark.fleet  # a split runs through a redis-server
@pytest.mark.parametrize("app", STABLE)
def test_psim_in_two_automatic_regions_gives_what_one_region_gives(app: str) -> None:
    alone = psim(CORPUS / app, options={"quiet": True})
    parted = psim(CORPUS / app, regions=2, options={"quiet": True})
    assert parted["metrics"]["Delivered messages"] == alone["metrics"]["Delivered messages"]
    assert parted["states"] == alone["states"]
    assert len(parted["regions"]) == 2 and parted["partition"]["regions"] == 2
    assert parted["partition"]["balance"] <= 1.1


@pytest.mark.fleet
def test_psim_command_reports_the_cut_and_refuses_bad_k() -> None:
    app = str(CORPUS / "clock_tree_4_4.xml")
    cmd = [sys.executable, "-m", "pstack_tasks.ui.cli.psim", "-q", "-r"]
    p = subprocess.run([*cmd, "--regions", "2", app], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["metrics"]["Delivered messages"] == 67320
    assert "psim: 2 regions (metis" in p.stderr and "cut 4/680 edges (0.59%), balance 1.003" in p.stderr
    for args, message in ((["--regions", "0"], "regions must be an integer >= 1, not 0"),
                          (["--regions", "400"], "400 regions asked for, but the graph has only 341 devices"),
                          (["--regions", "2", "--rmap", '{"n_0": 1}'],
                           "give a region map (rmap) or a number of regions (regions), not both")):
        p = subprocess.run([*cmd, *args, app], capture_output=True, text=True, timeout=60)
        assert p.returncode != 0 and p.stderr.strip().splitlines() == [f"psim: error: {message}"]


def test_run_with_regions_on_the_fleet_splits_and_reports(on_fleet: WorkerFleet) -> None:
    app = CORPUS / "clock_tree_4_4.xml"
    result = run(app, regions=2, timeout=120)
    assert result["metrics"]["Delivered messages"] == 67320
    assert result["states"] == psim(app, options={"quiet": True})["states"]
    assert len(result["regions"]) == 2
    assert result["partition"]["cut_edges"] == 4 and result["partition"]["edges"] == 680
    assert status(result["pid"])["rmap"] == "auto:2"
    with pytest.raises(ConfigurationError, match="not both"):
        run(app, rmap={"n_0": 1}, regions=2)


@pytest.mark.fleet
def test_pstack_run_with_regions_on_the_embedded_stack() -> None:
    p = pstack("run", "-r", "--regions", "2", str(CORPUS / "clock_tree_4_4.xml"), env=bare_env())
    assert p.returncode == 0, p.stderr
    result = json.loads(p.stdout)
    assert result["metrics"]["Delivered messages"] == 67320 and len(result["regions"]) == 2
    assert "pstack: 2 regions (metis" in p.stderr and "cut 4/680 edges" in p.stderr
    p = pstack("run", "--regions", "2", "--rmap", '{"n_0": 1}', str(CORPUS / "clock_tree_4_4.xml"), env=bare_env())
    assert p.returncode != 0 and p.stderr.strip().splitlines() == [
        "pstack: error: give a region map (rmap) or a number of regions (regions), not both"]
