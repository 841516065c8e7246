"""The native instance loader packs exactly what the Python loader packs, or leaves the file to it.

Every corpus app and pstack test file gives a byte-identical instance file through both loaders;
a file the native loader cannot serve (an error in it, an unusual construct) is read by the Python
loader, so errors keep their one-line file:line messages.
"""
from __future__ import annotations

import io
from pathlib import Path

import pytest

from pstack_tasks.exceptions import GraphError
from pstack_tasks.graph import loader
from pstack_tasks.graph.application import Application
from pstack_tasks.native import instance_loader
from pstack_tasks.native.instance_file import write_instance

ROOT = Path(__file__).resolve().parent
CORPUS = Path("/work/shared/data/poets-corpus")
FILES = sorted(ROOT.glob("data/**/*.xml")) + (sorted(CORPUS.glob("*.xml")) if CORPUS.is_dir() else [])


def instance_bytes(app: Application) -> bytes:
    buf = io.BytesIO()
    regions, _ = loader.region_array(app.instance, None)
    write_instance(app, buf, regions, "t" * 64)
    return buf.getvalue()


def both_loaders(path: Path) -> tuple[Application, Application] | str:
    """(native, Python) applications of ``path``; or, when the Python loader refuses it, the one
    error message both loaders give (asserted to be the same)."""
    try:
        python = loader.load(str(path))
    except GraphError as e:
        with pytest.raises(GraphError) as err:
            instance_loader.load(str(path), min_bytes=0)
        assert str(err.value) == str(e)
        return str(e)
    return instance_loader.load(str(path), min_bytes=0), python


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_native_and_python_loaders_agree(path: Path) -> None:
    try:
        python = loader.load(str(path))
    except GraphError as e:
        with pytest.raises(GraphError) as native_error:
            instance_loader.load(str(path), min_bytes=0)
        assert str(native_error.value) == str(e)
        return
    native = instance_loader.load(str(path), min_bytes=0)
    assert instance_bytes(native) == instance_bytes(python)
    assert native.instance.names == python.instance.names and native.instance.id == python.instance.id
    assert list(native.instance.edges) == list(python.instance.edges)
    assert native.instance.device_count == python.instance.device_count


RING = """<?xml version="1.0"?>
<Graphs xmlns="https://poets-project.org/schemas/virtual-graph-schema-v2">
  <GraphType id="ring">
    <Properties><Scalar type="uint32_t" name="g"/></Properties>
    <MessageTypes><MessageType id="token"><Message><Scalar type="uint32_t" name="src"/></Message></MessageType>
    </MessageTypes>
    <DeviceTypes><DeviceType id="node">
      <Properties><Scalar type="int8_t" name="id"/><Scalar type="float" name="f"/><Scalar type="double" name="d"/>
      </Properties>
      <State><Scalar type="uint64_t" name="c"/></State>
      <ReadyToSend><![CDATA[ *readyToSend = 0; ]]></ReadyToSend>
      <InputPin name="in" messageTypeId="token"><OnReceive><![CDATA[ ]]></OnReceive>
        <Properties><Scalar type="int16_t" name="w"/></Properties></InputPin>
      <OutputPin name="out" messageTypeId="token" indexed="true"><OnSend><![CDATA[ ]]></OnSend></OutputPin>
    </DeviceType></DeviceTypes>
  </GraphType>
  <GraphInstance id="i" graphTypeId="ring">
    <Properties>"g": 7</Properties>
    <DeviceInstances>
      <DevI id="a:b" type="node"><P>{"id": -128, "f": 0.1, "d": -0}</P><S>"c": 18446744073709551615</S></DevI>
      <DevI id="b" type="node"><P>"id": 127, "f": 1e39, "d": 1e400, "id": true</P></DevI>
    </DeviceInstances>
    <EdgeInstances>
      <EdgeI path="b:in-a:b:out"><P>"w": -5</P></EdgeI>
      <EdgeI path="a:b:in-b:out"/>
      <EdgeI path="b:in-b:out" sendIndex="0"/>
    </EdgeInstances>
  </GraphInstance>
</Graphs>
"""


@pytest.mark.parametrize("change,native", [
    ("", False),                                     # 1e39 does not fit a float: the Python loader's error
    ('"f": 1e39', True),                             # now it packs natively
    ('"f": 3.5e38', False),                          # still too large for a float
    ('"id": 128', False),                            # out of range
    ('"id": 1.5', False),                            # not an integer
    ('"d": NaN', True),                              # a Python JSON extension: left to the Python loader
])
def test_values_pack_alike_or_fall_back(tmp_path: Path, change: str, native: bool) -> None:
    text = RING.replace('"f": 1e39, ', "") if change == '"f": 1e39' else RING
    if change and change != '"f": 1e39':
        text = RING.replace('"f": 1e39', change)
    path = tmp_path / "ring.xml"
    path.write_text(text)
    loaded = both_loaders(path)
    if isinstance(loaded, str):
        assert ":" in loaded  # the refusal names file:line
        return
    app, python = loaded
    assert instance_bytes(app) == instance_bytes(python)
    assert (app.instance.packed is not None) == (native and "NaN" not in change)


VALUES = ROOT / "data" / "v3" / "values.xml"


@pytest.mark.parametrize("state,native", [
    ('"dense": [1, 2, 3, 4], "sparse": {"0": 5, "4": 6}', True),          # dense and sparse arrays
    ('"nested": {"a": 2, "inner": {"b": -1.25e-3, "c": {"1": 7}}}', True),  # tuples in tuples, floats
    ('"pts": [{"u": 1}, {}], "pt": {"y": -3, "x": 0}', True),               # arrays of tuples, any order
    ('"nested": {"a": true, "inner": {"b": 3}}, "plain": false', True),     # booleans, an integer for a float
    ('"plain": 1, "plain": 2', True),                                        # a scalar twice: the last counts
    ('"dense": [], "sparse": {}', True),                                      # empty values keep the defaults
    ('"dense": [1], "dense": [2]', False),                                   # json.loads keeps the last: Python's
    ('"sparse": {"1": 1, "1": 2}', False),
    ('"sparse": {"+1": 3}', False),                                          # unusual index text: Python's
    ('"sparse": {"01": 3}', True),                                           # int("01") is 1 in both
    ('"dense": [1, 2, 3, 4, 5]', False),                                     # too many values: Python's error
    ('"sparse": {"5": 1}', False),                                           # index out of range: Python's error
    ('"dense": [1.5]', False),                                               # not an integer
    ('"dense": null', False),                                                # null is refused
    ('"nested": {"inner": {"c": [128]}}', False),                            # out of range for int8_t
    ('"nested": {"zz": 1}', False),                                          # no such member
    ('"nested": [1]', False),                                                # a list for a tuple
    ('"nested": {"inner": {"b": 1e39}}', False),                             # too large for a float
])
def test_arrays_tuples_and_floats_pack_natively(tmp_path: Path, state: str, native: bool) -> None:
    """Values for array and tuple members (v2/v3 JSON) pack natively, byte for byte as values.py
    packs them; what the native loader is unsure of is read by the Python loader (same bytes or
    the same error)."""
    given = '"plain": 6, "dense": [9], "nested": {"inner": {"c": [5]}}, "pt": {"x": 4}'
    text = VALUES.read_text().replace(given, state)
    path = tmp_path / "values.xml"
    path.write_text(text)
    loaded = both_loaders(path)
    if isinstance(loaded, str):
        assert not native
        return
    app, python = loaded
    assert instance_bytes(app) == instance_bytes(python)
    assert (app.instance.packed is not None) == native


#: corpus files the native loader leaves to the Python loader (the reason)
LEFT_TO_PYTHON = {"typeref_inst.xml": "a GraphTypeReference", "structs.xml": "v4 initialisers of arrays and tuples",
                  "typedefs.xml": "v4 initialisers of tuples",
                  "external.xml": "external devices (ExtI)",
                  "test_external_ping_pong_graph_inst_1.xml": "a GraphTypeReference and external devices"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_app_loads_natively(path: Path) -> None:
    """Every corpus app and test file without an error is packed by the native loader itself."""
    try:
        loader.load(str(path))
    except GraphError:
        return
    app = instance_loader.load(str(path), min_bytes=0)
    assert (app.instance.packed is not None) == (path.name not in LEFT_TO_PYTHON)


def test_psim_runs_a_natively_packed_ring_from_the_loaders_file(tmp_path: Path) -> None:
    """A ring over the native loader's size threshold runs in one region from the loader's own
    instance file (no copy): the same final states and metrics as with the Python loader, and
    the second run reads the parsed instance from the cache."""
    import json
    import os
    import subprocess
    import sys
    import uuid
    ring = tmp_path / "ring.xml"
    with open(ring, "w") as f:
        subprocess.run([sys.executable, str(ROOT.parent / "bench" / "ring.py"), "12000", "3"], stdout=f, check=True)
        f.write(f"<!-- {uuid.uuid4()}: a file no cache has seen -->\n")
    assert ring.stat().st_size >= instance_loader.MIN_BYTES
    psim = [sys.executable, "-m", "pstack_tasks.ui.cli.psim", "-q", "-r", "-d", str(ring)]
    runs = [subprocess.run(psim, env=dict(os.environ, PSTACK_NATIVE_LOADER=flag), capture_output=True, text=True,
                           check=True) for flag in ("1", "1", "0")]
    cold, warm, python = (json.loads(r.stdout) for r in runs)
    assert "phase native pack" in runs[0].stderr and "phase native pack" not in runs[1].stderr
    assert cold["states"] == warm["states"] == python["states"] and len(cold["states"]) == 12000
    assert cold["metrics"]["Delivered messages"] == python["metrics"]["Delivered messages"] == 36000
