"""``pstack batch`` / ``pstack batches`` / ``psim --set`` / ``pstack run --set`` as users type them:
subprocesses against the session fleet (docs/batches.md)."""
from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from support.apps import token_ring
from support.commands import pstack
from support.fleet import WorkerFleet
from support.paths import DATA

SEEDED = DATA / "batch" / "seeded-ring.xml"  # 5 nodes, graph property "seed"


def test_batch_runs_the_grid_writes_csv_and_shows_lists_and_plots(tmp_path: Path, on_fleet: WorkerFleet) -> None:
    env = dict(os.environ)  # the fleet's PSTACK_REDIS_URL and PSTACK_KEY_PREFIX
    out = tmp_path / "sweep.csv"
    done = pstack("batch", str(SEEDED), "--set", "type:node.limit=2,3", "--seeds", "1..2", "--runs", "2",
                  "--out", str(out), "--no-progress", env=env, timeout=240)
    assert done.returncode == 0, done.stderr
    batch_id = int(done.stderr.split("pstack: batch ")[1].split()[0])
    frame = pd.read_csv(out)
    assert len(frame) == 2 * 2 * 2
    assert list(frame.columns[:5]) == ["type:node.limit", "run", "seed", "pid", "state"]
    assert sorted(frame["seed"].unique()) == [1, 2]
    assert (frame["Delivered messages"] == 5 * frame["type:node.limit"]).all()
    assert "type:node.limit" in done.stdout and "Done" in done.stdout

    shown = pstack("batch", "show", str(batch_id), "-r", env=env)
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert doc["batch"]["state"] == "Done" and doc["batch"]["counts"]["Done"] == 8 and len(doc["rows"]) == 8
    listed = pstack("batches", env=env)
    assert listed.returncode == 0 and str(batch_id) in listed.stdout and "seeded_ring" in listed.stdout

    svg = tmp_path / "plot.svg"
    drawn = pstack("batch", "plot", str(batch_id), "--x", "type:node.limit", "--y", "Delivered messages",
                   "--out", str(svg), env=env)
    assert drawn.returncode == 0, drawn.stderr
    assert svg.read_text().lstrip().startswith("<?xml") and "<svg" in svg.read_text()
    bad = pstack("batch", "plot", str(batch_id), "--x", "type:node.lim", env=env)
    assert bad.returncode == 5 and "'type:node.lim' is not a grid key" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_async_batch_then_wait_and_kill_from_the_shell(tmp_path: Path, on_fleet: WorkerFleet) -> None:
    env = dict(os.environ)
    app = tmp_path / "tokens.xml"
    app.write_text(token_ring(3, 2))
    started = pstack("batch", str(app), "--runs", "3", "-e", "dummy", "--option", "seconds=0.3", "--async", env=env)
    assert started.returncode == 0, started.stderr
    batch_id = started.stdout.strip()
    waited = pstack("batch", "wait", batch_id, "--no-progress", "--out", str(tmp_path / "r.jsonl"), env=env)
    assert waited.returncode == 0, waited.stderr
    assert len(pd.read_json(tmp_path / "r.jsonl", lines=True)) == 3

    long = pstack("batch", str(app), "--runs", "6", "-e", "dummy", "--option", "seconds=30", "--async", env=env)
    killed = pstack("batch", "kill", long.stdout.strip(), env=env)
    assert killed.returncode == 0, killed.stderr
    assert "Killed" in killed.stdout
    after = pstack("batch", "wait", long.stdout.strip(), "--no-progress", env=env)
    assert after.returncode == 1 and "killed" in after.stderr


def test_bad_set_is_refused_naming_the_key_before_any_batch(tmp_path: Path, on_fleet: WorkerFleet) -> None:
    env = dict(os.environ)
    bad = pstack("batch", str(SEEDED), "--set", "type:node.limit=2,x", env=env)
    assert bad.returncode == 3 and "override 'type:node.limit'" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    no_seed = tmp_path / "tokens.xml"
    no_seed.write_text(token_ring(3, 2))
    refused = pstack("batch", str(no_seed), "--seeds", "1..3", env=env)
    assert refused.returncode == 3 and "graph type 'tokens' has none" in refused.stderr
    wrong_out = pstack("batch", str(SEEDED), "--set", "type:node.limit=2", "--out", "r.txt", env=env)
    assert wrong_out.returncode == 5 and "unknown extension '.txt'" in wrong_out.stderr
    assert "pstack: batch" not in wrong_out.stderr, "refused before the batch started"
    unknown = pstack("batch", "show", "99999", env=env)
    assert unknown.returncode == 1 and "no batch 99999" in unknown.stderr


def test_run_with_set_overrides_one_process(on_fleet: WorkerFleet) -> None:
    done = pstack("run", "-r", "--set", "type:node.limit=6", "--set", "graph:seed=9", str(SEEDED), env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["metrics"]["Delivered messages"] == 30
    assert {s["seen_seed"] for s in result["states"].values()} == {9}


def test_psim_set_overrides_and_refuses_a_bad_key() -> None:
    psim = [sys.executable, "-m", "pstack_tasks.ui.cli.psim"]
    done = subprocess.run([*psim, "-q", "-r", "--set", "device:n1.limit=1", "--set", "type:node.limit=3", str(SEEDED)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["states"]["n1"]["counter"] >= 1 and result["metrics"]["Delivered messages"] < 15
    bad = subprocess.run([*psim, "-q", "--set", "state:node.nope=1", str(SEEDED)], capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 3 and "override 'state:node.nope'" in bad.stderr and "state members: counter" in bad.stderr


def test_pcli_batch_builtins_show_runs_as_tables_whose_values_are_rows(tmp_path: Path, on_fleet: WorkerFleet) -> None:
    from pstack_tasks.ui.shell.batch_builtins import batch, batch_kill, batch_plot, batch_show, batches
    runs = batch(SEEDED, grid={"type:node.limit": [1, 3]}, runs=2, progress=False)
    assert [r["Delivered messages"] for r in runs] == [5, 5, 15, 15]
    text = str(runs)
    assert text.splitlines()[0].startswith("batch ") and "Done" in text and "type:node.limit" in text
    frame = pd.DataFrame(runs)
    assert list(frame.columns[:5]) == ["type:node.limit", "run", "seed", "pid", "state"]
    batch_id = int(text.split()[1])
    assert [r["pid"] for r in batch_show(batch_id)] == list(frame["pid"])
    assert batch_id in [b["id"] for b in batches()]
    png = batch_plot(batch_id, "type:node.limit", out=str(tmp_path / "p.png"))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Done" in batch_kill(batch_id)  # an ended batch stays as it ended


def test_a_batch_without_a_fleet_runs_on_an_embedded_stack(tmp_path: Path) -> None:
    from support.commands import bare_env
    out = tmp_path / "r.csv"
    done = pstack("batch", str(SEEDED), "--set", "type:node.limit=1,2", "--slots", "2", "--out", str(out),
                  "--no-progress", env=bare_env(), timeout=240)
    assert done.returncode == 0, done.stderr
    frame = pd.read_csv(out)
    assert list(frame["Delivered messages"]) == [5, 10] and list(frame["state"]) == ["Done", "Done"]


def test_batch_of_a_gzip_compressed_app_gives_what_the_plain_file_gives(tmp_path: Path,
                                                                        on_fleet: WorkerFleet) -> None:
    """``pstack batch app.xml.gz``: the batch reads the application as ``run`` does (decompressed by
    the client), so every run's figures are those of the plain file's batch."""
    env = dict(os.environ)
    packed = tmp_path / "seeded-ring.xml.gz"
    packed.write_bytes(gzip.compress(SEEDED.read_bytes()))
    frames = []
    for app in (SEEDED, packed):
        out = tmp_path / f"{app.name}.csv"
        done = pstack("batch", str(app), "--set", "type:node.limit=2,3", "--out", str(out), "--no-progress",
                      env=env, timeout=240)
        assert done.returncode == 0, done.stderr
        frames.append(pd.read_csv(out).sort_values("type:node.limit").reset_index(drop=True))
    plain, compressed = frames
    assert list(compressed["state"]) == ["Done", "Done"]
    assert list(compressed["Delivered messages"]) == list(plain["Delivered messages"]) == [10, 15]
