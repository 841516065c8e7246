"""psim's snapshots and checkpoints (docs/persistence.md, "psim"), in one region and with --rmap:
SIGUSR1 to psim writes a snapshot JSON (a consistent cut: every token in a device or in flight,
once), ``--checkpoint-every`` writes checkpoints, each named on stderr, and ``psim --resume`` from
one, in one region or on two, ends as the uninterrupted run."""
from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pstack_tasks.native.simulate import psim
from support.apps import token_ring

PSIM = [sys.executable, "-m", "pstack_tasks.ui.cli.psim"]
DEVICES, LIMIT = 30, 300_000
SLOW = "for (int k = 0; k < 150; ++k) deviceState->sum += 1e-12 * k;"
HALVES = {f"n{i}": 0 if i < DEVICES // 2 else 1 for i in range(DEVICES)}


@pytest.mark.parametrize("rmap, warm", [([], False), ([], True), (["--rmap", json.dumps(HALVES)], False)],
                         ids=["one-region", "one-region-warm-start", "rmap"])
def test_sigusr1_snapshots_and_periodic_checkpoints_of_psim_and_resuming_from_one(
        tmp_path: Path, rmap: list[str], warm: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PSTACK_CACHE_DIR", str(tmp_path / "cache"))  # the first psim run of the file parses it
    app = tmp_path / "ring.xml"
    app.write_text(token_ring(DEVICES, LIMIT, on_receive_extra=SLOW))
    reference = psim(str(app), options={"quiet": True})  # also builds the engine before the timed run
    if warm:  # a run that records the file: the run below starts warm (docs/psim.md, "Warm start")
        subprocess.run([*PSIM, "-q", "--max-steps", "10", str(app)], check=True, capture_output=True)
        assert list((tmp_path / "cache" / "warm").iterdir())
    out = tmp_path / "ck"
    proc = subprocess.Popen([*PSIM, "-q", "-r", "--no-states", "--checkpoint-every", "0.3", "--checkpoint-dir",
                             str(out), *rmap, str(app)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    first = ""
    while not first.endswith("delivered)\n") and proc.poll() is None:  # a checkpoint: the engines run
        first += proc.stderr.readline()
    proc.send_signal(signal.SIGUSR1)
    stdout, stderr = proc.communicate(timeout=120)
    stderr = first + stderr
    assert proc.returncode == 0, stderr
    assert json.loads(stdout)["metrics"]["Delivered messages"] == DEVICES * LIMIT
    lines = stderr.splitlines()
    snaps = [line for line in lines if line.startswith("psim: snapshot -> ")]
    ckpts = [re.fullmatch(r"psim: checkpoint -> (\S+) \((\d+) delivered\)", line) for line in lines
             if line.startswith("psim: checkpoint")]
    assert len(snaps) == 1 and ckpts and all(ckpts), stderr
    snap = json.loads(Path(snaps[0].split(" -> ")[1]).read_text())
    delivered = snap["metrics"]["Delivered messages"]
    assert 0 < delivered < DEVICES * LIMIT and len(snap["regions"]) == (2 if rmap else 1)
    assert sum(s["counter"] for s in snap["states"].values()) == delivered
    # a consistent cut: every token in a device or in flight between the regions, once
    assert sum(s["pending"] for s in snap["states"].values()) + snap["in_flight"] == DEVICES
    chosen = next(m for m in ckpts if m and 0 < int(m[2]) < DEVICES * LIMIT)
    for resume_on in ([], ["--rmap", json.dumps(HALVES)]):
        p = subprocess.run([*PSIM, "-q", "-r", "--resume", chosen[1], *resume_on, str(app)], capture_output=True,
                           text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        resumed = json.loads(p.stdout)
        assert resumed["metrics"]["Delivered messages"] == DEVICES * LIMIT
        assert resumed["states"] == reference["states"]
