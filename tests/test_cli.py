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


FLOATS_XML = """<?xml version="1.0"?>
<Graphs xmlns="https://poets-project.org/schemas/virtual-graph-schema-v3">
  <GraphType id="floats">
    <Properties/>
    <MessageTypes/>
    <DeviceTypes>
      <DeviceType id="cell">
        <Properties><Scalar name="k" type="uint32_t"/></Properties>
        <State>
          <Scalar name="d" type="double"/>
          <Scalar name="f" type="float"/>
          <Scalar name="i" type="int64_t"/>
          <Scalar name="u" type="uint64_t"/>
          <Array name="arr" length="3" type="double"/>
          <Tuple name="t"><Scalar name="x" type="float"/><Array name="y" length="2" type="double"/></Tuple>
        </State>
        <ReadyToSend><![CDATA[ *readyToSend = 0; ]]></ReadyToSend>
        <OnInit><![CDATA[
          double vals[] = {0.1, 1.0, 1e20, -0.0, 0.0/0.0, 1.0/0.0, -1.0/0.0, 5e-324, 123456789.125, 1e-7, 2.5, -3.0};
          uint32_t k = deviceProperties->k;
          deviceState->d = vals[k % 12];
          deviceState->f = (float)vals[(k + 1) % 12];
          deviceState->i = -9223372036854775807LL - 1 + k;
          deviceState->u = 18446744073709551615ULL - k;
          for (int j = 0; j < 3; ++j) deviceState->arr[j] = vals[(k + 2 + j) % 12];
          deviceState->t.x = (float)vals[(k + 5) % 12];
          deviceState->t.y[0] = vals[(k + 6) % 12] / 3; deviceState->t.y[1] = 1e300 * 10;
        ]]></OnInit>
      </DeviceType>
    </DeviceTypes>
  </GraphType>
  <GraphInstance id="inst" graphTypeId="floats">
    <DeviceInstances>
      <DevI id="c0" type="cell"><P>"k": 0</P></DevI>
      <DevI id="c1" type="cell"><P>"k": 1</P></DevI>
      <DevI id="c2" type="cell"><P>"k": 2</P></DevI>
      <DevI id="c3" type="cell"><P>"k": 3</P></DevI>
    </DeviceInstances>
    <EdgeInstances/>
  </GraphInstance>
</Graphs>
"""

#: what the C++ renderer printed for FLOATS_XML before the engine printed JSON only: the text,
#: now rendered by pstack_tasks/native/results.py from the JSON, must stay byte for byte the same
FLOATS_TEXT = """\
Metric [Delivered messages]: 0
Metric [Exit code]: 1
State [c0]: d = 0.10000000000000001, f = 1, i = -9223372036854775808, u = 18446744073709551615, \
arr = [1e+20, -0, nan], t = {x = inf, y = [-inf, 1.0000000000000001e+301]}
State [c1]: d = 1, f = 1.0000000200408773e+20, i = -9223372036854775807, u = 18446744073709551614, \
arr = [-0, nan, inf], t = {x = -inf, y = [0, 1.0000000000000001e+301]}
State [c2]: d = 1e+20, f = -0, i = -9223372036854775806, u = 18446744073709551613, \
arr = [nan, inf, -inf], t = {x = 0, y = [41152263.041666664, 1.0000000000000001e+301]}
State [c3]: d = -0, f = nan, i = -9223372036854775805, u = 18446744073709551612, \
arr = [inf, -inf, 4.9406564584124654e-324], t = {x = 123456792, y = [3.3333333333333334e-08, 1.0000000000000001e+301]}
"""


def test_text_output_prints_floats_as_c_does(tmp_path: Path) -> None:
    """Doubles and floats (NaN, infinities, -0, subnormals, in arrays and tuples) and 64-bit
    integers print as pstack's C++ printed them (``%.17g``)."""
    app = tmp_path / "floats.xml"
    app.write_text(FLOATS_XML)
    p = run("--full-state", str(app))
    assert p.returncode == 0, p.stderr
    assert p.stdout == FLOATS_TEXT


@pytest.mark.fleet
def test_split_text_output_is_the_single_regions(tmp_path: Path) -> None:
    """A split's merged result prints through the same renderer: floats too (they printed as
    Python's ``str`` before, ``0.1`` where one region printed ``0.10000000000000001``)."""
    app = tmp_path / "floats.xml"
    app.write_text(FLOATS_XML)
    p = run("--full-state", "--rmap", '{"c1": 1, "c3": 2}', str(app))
    assert p.returncode == 0, p.stderr
    assert p.stdout == FLOATS_TEXT


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
