"""psim's snapshots and checkpoints (docs/persistence.md, "psim"): SIGUSR1 to psim writes a snapshot
JSON (a consistent cut: every token in a device), ``--checkpoint-every`` writes checkpoints, each
named on stderr, and ``psim --resume`` from one, in one region or on two, ends as the uninterrupted
run."""
from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from pstack_tasks.native.simulate import psim
from support.apps import token_ring

PSIM = [sys.executable, "-m", "pstack_tasks.ui.cli.psim"]
DEVICES, LIMIT = 30, 300_000
SLOW = "for (int k = 0; k < 150; ++k) deviceState->sum += 1e-12 * k;"
HALVES = {f"n{i}": 0 if i < DEVICES // 2 else 1 for i in range(DEVICES)}


def test_sigusr1_snapshots_and_periodic_checkpoints_of_psim_and_resuming_from_one(tmp_path: Path) -> None:
    app = tmp_path / "ring.xml"
    app.write_text(token_ring(DEVICES, LIMIT, on_receive_extra=SLOW))
    reference = psim(str(app), options={"quiet": True})  # also builds the engine before the timed run
    out = tmp_path / "ck"
    proc = subprocess.Popen([*PSIM, "-q", "-r", "--no-states", "--checkpoint-every", "0.3", "--checkpoint-dir",
                             str(out), str(app)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    proc.send_signal(signal.SIGUSR1)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert json.loads(stdout)["metrics"]["Delivered messages"] == DEVICES * LIMIT
    lines = stderr.splitlines()
    snaps = [line for line in lines if line.startswith("psim: snapshot -> ")]
    ckpts = [re.fullmatch(r"psim: checkpoint -> (\S+) \((\d+) delivered\)", line) for line in lines
             if line.startswith("psim: checkpoint")]
    assert len(snaps) == 1 and ckpts and all(ckpts), stderr
    snap = json.loads(Path(snaps[0].split(" -> ")[1]).read_text())
    delivered = snap["metrics"]["Delivered messages"]
    assert 0 < delivered < DEVICES * LIMIT and snap["in_flight"] == 0
    assert sum(s["counter"] for s in snap["states"].values()) == delivered
    assert sum(s["pending"] for s in snap["states"].values()) == DEVICES
    chosen = next(m for m in ckpts if m and 0 < int(m[2]) < DEVICES * LIMIT)
    assert chosen is not None
    for rmap in ([], ["--rmap", json.dumps(HALVES)]):
        p = subprocess.run([*PSIM, "-q", "-r", "--resume", chosen[1], *rmap, str(app)], capture_output=True,
                           text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        resumed = json.loads(p.stdout)
        assert resumed["metrics"]["Delivered messages"] == DEVICES * LIMIT
        assert resumed["states"] == reference["states"]


def test_checkpoints_of_a_split_psim_run_are_refused_in_one_line(tmp_path: Path) -> None:
    app = tmp_path / "ring.xml"
    app.write_text(token_ring(4, 10))
    p = subprocess.run([*PSIM, "--checkpoint-every", "1", "--rmap", '{"n1": 1}', str(app)], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode != 0
    assert p.stderr.strip() == ("psim: error: --checkpoint-every works for a run in one region; a split (--rmap, "
                                "--regions) takes none yet (it can --resume)")
