"""The psim command as users run it: pstack's output, JSON, one-line errors and exit statuses."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from support.apps import variant
from support.paths import PSTACK

PSIM = [sys.executable, "-m", "pstack_tasks.ui.cli.psim"]


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*PSIM, *args], capture_output=True, text=True, timeout=120, env=env)


def test_text_output_is_pstacks() -> None:
    p = run(str(PSTACK / "ring-oscillator-01.xml"))
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "Log [device n0, level 1]: counter = 1"
    assert lines.count("Log [device n3, level 1]: counter = 10") == 1
    assert lines[-6:] == ["Metric [Delivered messages]: 40", "Metric [Exit code]: 0"] + [
        f"State [n{i}]: state = 0, counter = 10, toggle_buffer_ptr = 0" for i in range(4)]


def test_quiet_json_result() -> None:
    p = run("-q", "-r", str(PSTACK / "basic-02.xml"))
    assert p.returncode == 0 and p.stderr == ""
    result = json.loads(p.stdout)
    assert result["states"] == {"device0": {"counter": 10, "rts": 0}, "device1": {"counter": 10, "rts": 0}}
    assert result["metrics"]["Delivered messages"] == 20


def test_log_level_filters_handler_logs() -> None:
    assert "Log [" not in run("-l", "0", str(PSTACK / "basic-01.xml")).stdout
    assert "Log [device device1, level 1]: Received message 10" in run(str(PSTACK / "basic-01.xml")).stdout


def test_full_state_adds_arrays() -> None:
    result = json.loads(run("-q", "-r", "--full-state", str(PSTACK / "ring-oscillator-01.xml")).stdout)
    assert len(result["states"]["n0"]["toggle_buffer_dst"]) == 1024


@pytest.mark.fleet
def test_rmap_from_json_and_file(tmp_path: Path) -> None:
    rmap = tmp_path / "rmap.json"
    rmap.write_text('{"n1": 1, "n3": 1}')
    for value in ('{"n1": 1, "n3": 1}', str(rmap)):
        p = run("-q", "--rmap", value, str(PSTACK / "ring-oscillator-01.xml"))
        assert p.returncode == 0, p.stderr
        assert "Metric [Delivered messages]: 40" in p.stdout
        assert "State [n3]: state = 0, counter = 10, toggle_buffer_ptr = 0" in p.stdout


def test_errors_are_one_line_with_exit_status(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text("<Graphs xmlns='https://poets-project.org/schemas/virtual-graph-schema-v2'><GraphType")
    cases = [
        (bad, 3, f"psim: error: {bad}:1: malformed XML"),
        (tmp_path / "missing.xml", 3, f"psim: error: {tmp_path / 'missing.xml'}: no such file"),
        (variant("basic-01.xml", 'type="device"><P>"id": 0', 'type="dev"><P>"id": 0', tmp_path, "t.xml"), 3,
         "unknown device type 'dev'"),
        (variant("basic-01.xml", "deviceState->counter = 0;", "deviceState->counter = nope;", tmp_path, "c.xml"), 4,
         "compile error in device type 'device', OnReceive of pin '__init__', line 1"),
    ]
    for path, status, message in cases:
        p = run("-q", str(path))
        assert p.returncode == status, (path, p.stderr)
        assert message in p.stderr
        assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr


def test_bad_rmap_and_debug_traceback() -> None:
    p = run("--rmap", "{not json", str(PSTACK / "basic-01.xml"))
    assert p.returncode == 5 and p.stderr.startswith("psim: error: --rmap")
    p = run("-d", "--rmap", '{"zzz": 1}', str(PSTACK / "basic-01.xml"))
    assert p.returncode != 0 and "Traceback" in p.stderr
