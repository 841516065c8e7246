"""psim's warm start (native/warm_run.py): the second run of the same bytes goes from the file to its
recorded engine and instance without the graph package, prints exactly what a parsed run prints,
and never runs a stale engine or instance."""
from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pstack_tasks.native import warm_run
from pstack_tasks.native.options import RunOptions
from pstack_tasks.protocol import TYPE_HASH_AT
from support.apps import crashing_app, token_ring, variant
from support.paths import PSTACK

RING = PSTACK / "ring-oscillator-01.xml"
#: what the warm start must not import: the graph model and the XML parser (and what a split needs)
PARSING = ("pstack_tasks.graph.model", "pstack_tasks.graph.loader", "lxml", "pstack_tasks.native.prepare",
           "pstack_tasks.native.relay", "redis")

PROBE = """
import json, sys
from pstack_tasks.ui.cli import psim
code = 0
try:
    psim.main(sys.argv[1:])
except SystemExit as e:
    code = e.code or 0
print(json.dumps([m for m in {parsing!r} if m in sys.modules]), file=sys.stderr)
sys.exit(code)
"""


def psim(cache: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """psim in a fresh interpreter with its own cache; the modules of PARSING it imported are the
    last line of its stderr."""
    env = dict(os.environ, PSTACK_CACHE_DIR=str(cache))
    env.pop("PSTACK_REDIS_URL", None)
    return subprocess.run([sys.executable, "-c", PROBE.format(parsing=PARSING), *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=300)


def parsed(p: subprocess.CompletedProcess[str]) -> list[str]:
    return list(json.loads(p.stderr.strip().splitlines()[-1]))


def records(cache: Path) -> list[Path]:
    return sorted(p for p in (cache / "warm").iterdir() if not p.name.startswith("."))


@pytest.mark.parametrize("args", [["-q"], ["-r"], ["-q", "-r", "--no-states"], ["-l", "0", "--max-steps", "7"],
                                  ["--full-state", "-r"]])
def test_a_second_run_starts_warm_and_prints_the_same(tmp_path: Path, args: list[str]) -> None:
    cold = psim(tmp_path, *args, RING)
    assert cold.returncode == 0, cold.stderr
    assert "pstack_tasks.graph.model" in parsed(cold)
    warm = psim(tmp_path, *args, RING)
    assert warm.returncode == 0, warm.stderr
    assert parsed(warm) == []
    assert _stable(warm.stdout) == _stable(cold.stdout) != ""
    assert len(records(tmp_path)) == 1


def _stable(out: str) -> str:
    """The output without the engine's timings (Load and Run seconds), which differ run to run."""
    if out.startswith("{"):
        doc = json.loads(out)
        for name in ("Load seconds", "Run seconds"):
            doc["metrics"].pop(name, None)
        return json.dumps(doc)
    return "\n".join(ln for ln in out.splitlines() if "seconds]" not in ln)


def test_another_content_is_another_record_and_its_own_result(tmp_path: Path) -> None:
    app = tmp_path / "ring.xml"
    app.write_text(token_ring(3, 5))
    assert json.loads(psim(tmp_path, "-r", app).stdout)["metrics"]["Delivered messages"] == 15
    app.write_text(token_ring(3, 7))  # same name, new bytes: never the old record
    again = psim(tmp_path, "-r", app)
    assert json.loads(again.stdout)["metrics"]["Delivered messages"] == 21
    assert "pstack_tasks.graph.model" in parsed(again)
    assert parsed(psim(tmp_path, "-r", app)) == []
    assert len(records(tmp_path)) == 2


def test_a_copy_elsewhere_and_a_gzip_file_start_warm(tmp_path: Path) -> None:
    psim(tmp_path, "-q", RING)
    copy = tmp_path / "copy.xml"
    copy.write_bytes(RING.read_bytes())
    assert parsed(psim(tmp_path, "-q", copy)) == []
    packed = tmp_path / "ring.xml.gz"
    packed.write_bytes(gzip.compress(RING.read_bytes()))
    first, second = psim(tmp_path, "-q", "-r", packed), psim(tmp_path, "-q", "-r", packed)
    assert parsed(second) == [] and json.loads(second.stdout)["states"] == json.loads(first.stdout)["states"]


def test_a_record_whose_engine_is_gone_or_whose_instance_changed_is_a_miss(tmp_path: Path) -> None:
    psim(tmp_path, "-q", RING)
    [entry] = records(tmp_path)
    engine, instance, _ = (entry / "record").read_text().split("\n")[:3]
    os.unlink(engine)  # the build cache was cleaned
    p = psim(tmp_path, "-q", "-r", RING)
    assert p.returncode == 0, p.stderr
    assert "pstack_tasks.graph.model" in parsed(p) and json.loads(p.stdout)["metrics"]["Delivered messages"] == 40
    [entry] = records(tmp_path)  # recorded again, with the engine built again
    instance = (entry / "record").read_text().split("\n")[1]
    with open(instance, "r+b") as f:  # another engine build's type hash
        f.seek(TYPE_HASH_AT)
        f.write(b"0" * 16)
    p = psim(tmp_path, "-q", "-r", RING)
    assert "pstack_tasks.graph.model" in parsed(p) and json.loads(p.stdout)["metrics"]["Delivered messages"] == 40
    assert parsed(psim(tmp_path, "-q", RING)) == []


def test_a_handler_failure_on_a_warm_start_is_the_same_one_line(tmp_path: Path) -> None:
    app = crashing_app(tmp_path)
    cold, warm = psim(tmp_path, "-q", app), psim(tmp_path, "-q", app)
    assert parsed(warm) == []
    assert cold.returncode == warm.returncode == 1
    assert cold.stderr.splitlines()[:-1] == warm.stderr.splitlines()[:-1]
    assert "segmentation fault" in warm.stderr.lower() or "signal" in warm.stderr.lower(), warm.stderr


def test_overrides_resume_and_tmpdir_parse_as_before(tmp_path: Path) -> None:
    psim(tmp_path, "-q", RING)
    sets = psim(tmp_path, "-q", "--set", "graph:nothing=1", RING)
    assert sets.returncode == 3 and "nothing" in sets.stderr  # checked against the parsed graph type
    kept = tmp_path / "kept"
    p = psim(tmp_path, "-q", "-t", kept, RING)
    assert p.returncode == 0 and "pstack_tasks.graph.model" in parsed(p)
    assert list(kept.glob("*.inst"))
    assert not warm_run.eligible(RunOptions(overrides={"graph:x": 1}))
    assert not warm_run.eligible(RunOptions(resume="r.ckpt"))
    assert warm_run.eligible(RunOptions(max_steps=3, time_limit=1.0))


def test_a_split_never_starts_warm(tmp_path: Path) -> None:
    psim(tmp_path, "-q", RING)
    p = psim(tmp_path, "-q", "-r", "--regions", "2", RING)
    assert p.returncode == 0, p.stderr
    assert "pstack_tasks.graph.model" in parsed(p)
    assert json.loads(p.stdout)["metrics"]["Delivered messages"] == 40


def test_records_beyond_the_bound_go_least_recently_used_first(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PSTACK_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(warm_run, "MAX_RECORDS", 2)
    from pstack_tasks.native.prepare import prepare
    apps = [variant("ring-oscillator-01.xml", "Ring Oscillator", f"Ring {i}", tmp_path, f"r{i}.xml") for i in range(3)]
    for i, app in enumerate(apps):
        assert warm_run.remember(str(app), prepare(app)) is not None
        if i == 0:
            [first] = records(tmp_path)
            os.utime(first, (1, 1))  # the least recently used
    assert len(records(tmp_path)) == 2
    assert warm_run.find(str(apps[0])) is None
    assert warm_run.find(str(apps[2])) is not None


def test_a_big_instance_runs_from_the_native_loaders_file_in_place(tmp_path: Path) -> None:
    app = tmp_path / "big.xml"
    app.write_text(token_ring(12_000, 2))
    assert app.stat().st_size > 1 << 20  # read by the native loader (native/instance_loader.py MIN_BYTES)
    cold = psim(tmp_path, "-q", "-r", "--no-states", app)
    warm = psim(tmp_path, "-q", "-r", "--no-states", app)
    assert parsed(warm) == [], warm.stderr
    assert json.loads(warm.stdout)["metrics"]["Delivered messages"] == 24_000 == \
        json.loads(cold.stdout)["metrics"]["Delivered messages"]
    [entry] = records(tmp_path)
    instance = Path((entry / "record").read_text().split("\n")[1])
    assert instance.parent.parent == tmp_path / "instances" and not (entry / "instance").exists()
