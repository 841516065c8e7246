"""Batches on a real fleet (real Redis, real Celery workers, real engines): a sweep of a multi-token
ring's per-device limit, its record, rows and CSV, seeds, kill and wait (docs/batches.md)."""
from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest

from pstack_tasks.exceptions import BatchNotFound, GraphError, PermissionDenied
from pstack_tasks.fleet.batches import Batch, batch, batches
from pstack_tasks.fleet.client import ps, run
from pstack_tasks.graph import loader
from pstack_tasks.native import engine_index
from support.apps import token_ring
from support.fleet import WorkerFleet
from support.paths import DATA

SEEDED = DATA / "batch" / "seeded-ring.xml"  # 5 nodes, a graph property "seed"; graph type seeded_ring


def ring_app(tmp_path: Path, n: int = 6) -> Path:
    """bench/ring.py's multi-token ring (graph type ``ring``): delivered = devices x limit."""
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    import ring
    path = tmp_path / "ring.xml"
    path.write_text(ring.generate_ring(n, 2))
    return path


def engine_binary(app: Path) -> tuple[Path, int, int]:
    """The engine of the application's graph type and its file's identity (inode, mtime): a
    rebuilt engine is a new file, renamed into place.  (The cache is shared with whatever else
    compiles on this machine meanwhile, so counting its entries would not say what this test did.)"""
    engine = engine_index.engine_for(loader.load(app).graph_type).engine
    st = engine.stat()
    return engine, st.st_ino, st.st_mtime_ns


def test_a_sweep_delivers_devices_times_limit_in_every_run_with_one_parse(tmp_path: Path, on_fleet: WorkerFleet
                                                                           ) -> None:
    app = ring_app(tmp_path)
    limits = [3, 5, 8, 13]
    run(app, timeout=120)  # the first run compiles the graph type's engine (if this host has none)
    engine_before = engine_binary(app)
    parses_before = loader.load_count()
    handle = batch(app, grid={"type:node.limit": limits}, runs=3, timeout=180)
    assert loader.load_count() - parses_before == 1, "the XML is parsed once for the whole batch"
    assert engine_binary(app) == engine_before, "no run compiled: every one used the engine built before"
    view = handle.view()
    assert view.state == "Done" and view.counts["Done"] == 12 and len(view.runs) == 12
    for one in view.runs:
        assert one.metrics["Delivered messages"] == 6 * one.params["type:node.limit"]
    assert sorted({r.pid for r in view.runs}) == sorted(r.pid for r in view.runs)
    tagged = [p for p in ps(limit=100) if p["pid"] in {r.pid for r in view.runs}]
    assert len(tagged) == 12

    out = handle.write(tmp_path / "sweep.csv")
    frame = pd.read_csv(out)
    assert len(frame) == 12
    assert list(frame.columns[:5]) == ["type:node.limit", "run", "seed", "pid", "state"]
    assert {"Delivered messages", "Exit code"} <= set(frame.columns)
    assert (frame["Delivered messages"] == 6 * frame["type:node.limit"]).all()
    assert sorted(frame["run"].unique()) == [0, 1, 2]
    lines = pd.read_json(handle.write(tmp_path / "sweep.jsonl"), lines=True)
    assert list(lines.columns) == list(frame.columns) and len(lines) == 12


def test_bad_keys_and_values_are_refused_before_anything_is_submitted(tmp_path: Path, on_fleet: WorkerFleet) -> None:
    app = ring_app(tmp_path)
    known = len(batches(limit=1000))
    cases = {
        "type:node.limt": ("type:node.limt", "no property 'limt'"),
        "type:nod.limit": ("type:nod.limit", "no device type 'nod'"),
        "device:n99.limit": ("device:n99.limit", "no device 'n99'"),
        "bogus:x": ("bogus:x", "unknown kind"),
    }
    for key, (named, why) in cases.items():
        with pytest.raises(GraphError) as e:
            batch(app, grid={key: [1]}, wait=False)
        assert named in str(e.value) and why in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(GraphError, match=r"'type:node.limit'.*out of range for uint32_t"):
        batch(app, grid={"type:node.limit": [4, -1]}, wait=False)
    with pytest.raises(GraphError, match=r"graph type 'ring' has none"):
        batch(app, seeds=[1, 2], wait=False)
    assert len(batches(limit=1000)) == known, "no batch was created"


def test_seeds_set_the_seed_property_and_are_in_records_and_rows(tmp_path: Path, on_fleet: WorkerFleet) -> None:
    handle = batch(SEEDED, grid={"type:node.limit": [2]}, seeds=[11, 12, 13], timeout=120)
    rows = handle.rows()
    assert [r["seed"] for r in rows] == [11, 12, 13]
    from pstack_tasks.fleet.client import block
    for row in rows:
        result = block(row["pid"], timeout=10)
        assert {s["seen_seed"] for s in result["states"].values()} == {row["seed"]}
    from pstack_tasks.fleet import store
    from pstack_tasks.fleet.keys import Keys
    rec = store.client().hgetall(Keys.current().proc(rows[0]["pid"]))
    assert rec["seed"] == "11" and rec["batch"] == str(handle.id)


def test_kill_drops_waiting_runs_and_stops_running_ones(tmp_path: Path, on_fleet: WorkerFleet) -> None:
    app = tmp_path / "ring.xml"
    app.write_text(token_ring(3, 2))
    handle = batch(app, grid={"type:node.limit": [1]}, runs=10, engine="dummy", options={"seconds": 30}, wait=False)
    deadline = time.monotonic() + 30
    while handle.view().counts["Running"] < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    started = time.monotonic()
    view = handle.kill()
    assert time.monotonic() - started < 20
    assert view.ended and view.state == "Killed"
    assert view.counts["Killed"] == 10 and view.counts["Running"] == view.counts["Waiting"] == 0
    assert handle.wait(timeout=5).state == "Killed"


def test_wait_times_out_naming_the_batch_and_unknown_batches_are_refused(tmp_path: Path, on_fleet: WorkerFleet
                                                                         ) -> None:
    app = tmp_path / "ring.xml"
    app.write_text(token_ring(3, 2))
    handle = batch(app, runs=2, engine="dummy", options={"seconds": 1.5}, wait=False)
    with pytest.raises(TimeoutError, match=rf"batch {handle.id} is still"):
        handle.wait(timeout=0.2)
    assert handle.wait(timeout=60).state == "Done"
    with pytest.raises(BatchNotFound, match="no batch 987654"):
        Batch(987654).view()


def test_another_user_may_not_kill_a_batch(tmp_path: Path, on_fleet: WorkerFleet,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    app = tmp_path / "ring.xml"
    app.write_text(token_ring(3, 2))
    handle = batch(app, runs=1, engine="dummy", options={"seconds": 0.2}, wait=True, timeout=60)
    monkeypatch.setenv("PSTACK_USER", "mallory-not-the-owner")
    with pytest.raises(PermissionDenied, match=rf"batch {handle.id} belongs to"):
        handle.kill()


def test_seeds_given_twice_are_refused_before_redis_is_asked() -> None:
    from pstack_tasks.exceptions import ConfigurationError
    with pytest.raises(ConfigurationError, match="give the seeds either as seeds or as the grid key 'graph:seed'"):
        batch(SEEDED, grid={"graph:seed": [1, 2]}, seeds=[3], wait=False)


def test_the_batch_api_is_imported_only_when_used() -> None:
    import subprocess
    import sys
    code = ("import sys, pstack_tasks; assert 'pstack_tasks.fleet.batches' not in sys.modules; "
            "from pstack_tasks import batch, batches, Batch, plot_batch, BatchNotFound; "
            "assert batch.__module__ == 'pstack_tasks.fleet.batches' and 'matplotlib' not in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_a_batch_takes_its_group_from_pstack_group_and_every_run_carries_it(
        tmp_path: Path, on_fleet: WorkerFleet, monkeypatch: pytest.MonkeyPatch) -> None:
    from pstack_tasks.fleet.client import status
    monkeypatch.setenv("PSTACK_GROUP", "lab")  # workers that name no group serve every group
    handle = batch(ring_app(tmp_path), grid={"type:node.limit": [2, 3]}, timeout=120)
    view = handle.view()
    assert view.record["group"] == "lab"
    assert view.counts["Done"] == 2
    assert {status(r.pid)["group"] for r in view.runs} == {"lab"}
