"""bench/suite.py's comparison with the committed baseline, on synthetic figure files (no timings):
a figure more than 20% worse than the baseline fails the suite naming it, one within 20% passes,
a baseline figure the run did not produce is reported, and ``--update-baseline`` rewrites the file.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import suite  # noqa: E402
from figures import Figure, write_figures  # noqa: E402


def _baseline(path: Path, figures: dict[str, dict[str, object]], mode: str = "full") -> Path:
    path.write_text(json.dumps({mode: {"machine": {"loadavg": [1.0, 1.0, 1.0]}, "figures": figures}}))
    return path


def _run(tmp_path: Path, figures: list[Figure], baseline: dict[str, dict[str, object]],
         *extra: str) -> subprocess.CompletedProcess[str]:
    out = write_figures("demo_bench", figures, path=tmp_path / "demo_bench.json")
    base = _baseline(tmp_path / "baseline.json", baseline)
    return subprocess.run([sys.executable, str(BENCH / "suite.py"), "--baseline", str(base), *extra,
                           "--no-run", str(out)], capture_output=True, text=True, timeout=60)


RATE = {"script": "demo_bench", "value": 50.0, "ratio": 0.5, "unit": "processes/s", "higher_is_better": True}


def test_a_ratio_more_than_20_percent_worse_fails_naming_the_figure(tmp_path: Path) -> None:
    # the raw value is better than the baseline's, but the ratio to the in-run baseline fell 30%
    fig = Figure("2-region processes/s", 60.0, "processes/s", True, baseline=171.4, baseline_name="floor")
    proc = _run(tmp_path, [fig], {"2-region processes/s": RATE})
    assert proc.returncode == 1, proc.stdout
    assert "FAIL: 2-region processes/s: regression" in proc.stdout


def test_within_20_percent_passes(tmp_path: Path) -> None:
    fig = Figure("2-region processes/s", 30.0, "processes/s", True, baseline=70.0, baseline_name="floor")  # 0.43
    proc = _run(tmp_path, [fig], {"2-region processes/s": RATE})
    assert proc.returncode == 0, proc.stdout
    assert "every figure within 20% of the committed baseline" in proc.stdout
    assert "| 2-region processes/s" in proc.stdout and "0.429" in proc.stdout


def test_raw_values_compared_in_the_figures_direction_when_there_is_no_in_run_baseline() -> None:
    base = {"wall": {"value": 10.0, "ratio": None}, "rate": {"value": 100.0, "ratio": None}}
    slower = [Figure("wall", 12.5, "s", higher_is_better=False), Figure("rate", 81.0, "msg/s")]
    assert [v.status for v in suite.compare(slower, base)] == ["regression", "ok"]
    faster = [Figure("wall", 7.0, "s", higher_is_better=False), Figure("rate", 79.0, "msg/s")]
    assert [v.status for v in suite.compare(faster, base)] == ["better", "regression"]


def test_a_missing_figure_is_reported_and_fails(tmp_path: Path) -> None:
    fig = Figure("2-region processes/s", 50.0, "processes/s", True, baseline=100.0)
    gone = dict(RATE, value=1.0e6, ratio=None, unit="msg/s")
    proc = _run(tmp_path, [fig], {"2-region processes/s": RATE, "ring remote msg/s": gone})
    assert proc.returncode == 1
    assert "FAIL: ring remote msg/s: missing" in proc.stdout


def test_figures_of_scripts_that_did_not_run_are_not_expected(tmp_path: Path) -> None:
    fig = Figure("2-region processes/s", 50.0, "processes/s", True, baseline=100.0)
    other = {"script": "split_bench", "value": 2.0, "ratio": 2.0}
    proc = _run(tmp_path, [fig], {"2-region processes/s": RATE, "split speed-up": other})
    assert proc.returncode == 0, proc.stdout


def test_update_baseline_rewrites_this_mode_and_keeps_the_rest(tmp_path: Path) -> None:
    fig = Figure("2-region processes/s", 10.0, "processes/s", True, baseline=100.0)
    other = {"script": "split_bench", "value": 2.0, "ratio": 2.0}
    proc = _run(tmp_path, [fig], {"2-region processes/s": RATE, "split speed-up": other}, "--update-baseline")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads((tmp_path / "baseline.json").read_text())
    assert doc["full"]["figures"]["2-region processes/s"]["ratio"] == pytest.approx(0.1)
    assert doc["full"]["figures"]["split speed-up"] == other
    assert "loadavg" in doc["full"]["machine"]


def test_discover_takes_scripts_with_quick_and_figures(tmp_path: Path) -> None:
    (tmp_path / "run_bench.py").write_text("# known\n")
    (tmp_path / "new_bench.py").write_text("ap.add_argument('--quick')\nwrite_figures('new_bench', [])\n")
    (tmp_path / "old_bench.py").write_text("print('no figures')\n")
    assert [p.name for p in suite.discover(tmp_path)] == ["run_bench.py", "new_bench.py"]


def test_the_committed_baseline_reads() -> None:
    for mode in ("quick", "full"):
        for name, entry in suite.load_baseline(suite.BASELINE, mode).items():
            assert entry.get("value") is not None, name
