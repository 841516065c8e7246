"""graph-schema v4: hand-written v4 files parse into the model the v2/v3 parsers build and run
through psim with the same results (including corpus applications converted from v3), and what
pstack cannot run is refused with file, line and element."""
from __future__ import annotations

import dataclasses
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pstack_tasks import psim
from pstack_tasks.exceptions import GraphError
from pstack_tasks.graph.loader import load
from pstack_tasks.graph.model import Array, Code, Scalar, Struct, Tuple
from pstack_tasks.graph.values import Packer
from support.apps import line_of
from support.paths import CORPUS as SHARED_CORPUS
from support.paths import DATA, PSTACK
from support.v4convert import convert

V4DATA = DATA / "v4"
STRUCTS = V4DATA / "structs.xml"
CORPUS = SHARED_CORPUS
V4 = "https://poets-project.org/schemas/virtual-graph-schema-v4"


def run(path: Path | str) -> dict[str, Any]:
    result = psim(path, options={"quiet": True, "full_state": True})
    for timing in ("Load seconds", "Run seconds"):
        result["metrics"].pop(timing)
    return result


def normalised(obj: Any) -> Any:
    """A model object without what legitimately differs between formats: lines, file, version,
    and defaults (v4 has none; a conversion moves them into the instance)."""
    if isinstance(obj, tuple):
        return tuple(normalised(x) for x in obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        blank = {"line": None, "file": "", "version": 0, "default": None}
        return dataclasses.replace(obj, **{f.name: blank[f.name] if f.name in blank
                                           else normalised(getattr(obj, f.name))
                                           for f in dataclasses.fields(obj) if f.init})
    return obj


# ---- a v4 application using every supported construct -------------------------------------------

def test_structs_app_runs_with_values_from_every_initialiser():
    # Given graph, device and edge values only in P/S attributes (some partial),
    # when it runs, then handlers saw exactly those values (worked out by hand in the comments).
    result = run(STRUCTS)
    metrics = result["metrics"]
    assert (metrics["Delivered messages"], metrics["Sent messages"], metrics["Exit reason"]) == (8, 8, "quiescence")
    a, b = result["states"]["a"], result["states"]["b"]
    # init_seen = nest.a + graph range.hi (7); a's nest.a = 10, b's = 20
    assert (a["init_seen"], b["init_seen"]) == (17, 27)
    # a: sum starts at S's 100, plus 3 messages * weight 2 * sum of b's v (22); edge count starts at S's 5
    assert (a["sum"], a["edge_total"], a["received"], a["pings"]) == (100 + 3 * 2 * 22, 6 + 7 + 8, 3, 1)
    # b: 3 * weight -1 * sum of a's v (20); its edge has no S, so counts 1, 2, 3
    assert (b["sum"], b["edge_total"], b["received"], b["pings"]) == (-60, 1 + 2 + 3, 3, 1)
    # v[i][j] = grid[i][j % 2] + j: b's grid row 1 was left out of the initialiser, so it is zero
    assert a["last"] == [[5, 7, 7], [0, 1, 2]] and b["last"] == [[1, 3, 3], [3, 5, 5]]
    # t.big = 2^40 + nest.inner.b (-5 for a, omitted so 0 for b); t.f = scale 0.5 * id
    assert (a["big"], b["big"]) == (2 ** 40, 2 ** 40 - 5)
    assert (a["f"], b["f"]) == (1.0, 0.5)


def test_structs_app_model_and_packed_instance():
    app = load(STRUCTS)
    gt = app.graph_type
    assert gt.id == "structs" and gt.version == 4
    assert gt.properties.format == "<Ihhd"
    assert gt.properties.fields[0].line == line_of(STRUCTS, "uint32_t rounds")  # after an XML comment
    assert gt.message_type("ping").payload == Struct()
    data = gt.message_type("data").payload
    assert data.fields[1].type == Array(Array(Scalar("int8_t"), 3), 2)
    assert isinstance(data.fields[2].type, Tuple) and data.format == "<I" + "b" * 6 + "fQ"
    node = gt.device_type("node")
    assert [f.name for f in node.state.fields][:4] == ["sent", "received", "pings", "poked"]
    assert node.input_pin("in").properties.format == "<i" and node.input_pin("in").state.format == "<I"
    assert node.on_init and node.on_init.what == "OnInit" and node.on_hardware_idle is None
    assert [c.what for c in gt.shared_code] == ["graph SharedCode"] and len(node.shared_code) == 1
    assert app.instance.graph_properties == struct.pack("<Ihhd", 3, -2, 7, 0.5)
    pp = Packer(node.properties)
    assert pp.unpack(bytes(app.instance.props[0][:pp.size])) == {
        "id": 1, "grid": [[1, 2], [3, 4]], "nest": {"a": 10, "inner": {"b": -5}}}
    assert bytes(app.instance.props[0][pp.size:]) == struct.pack("<I4BHi", 2, 5, 6, 0, 0, 20, 0)
    assert Packer(node.state).unpack(bytes(app.instance.state[0][:node.state.size]))["sum"] == 100
    key = (0, node.input_index("in"))
    assert bytes(app.instance.edge_props[key]) == struct.pack("<ii", 2, -1)
    assert bytes(app.instance.edge_state[key]) == struct.pack("<II", 5, 0)


def test_hand_written_v4_ring_oscillator_gives_the_v2_results():
    v4, v2 = run(V4DATA / "ring-oscillator.xml"), run(PSTACK / "ring-oscillator-01.xml")
    assert v4 == v2
    assert v4["metrics"]["Delivered messages"] == 40 and v4["metrics"]["Exit reason"] == "handler_exit"


# ---- equivalence with v3 originals --------------------------------------------------------------

EQUIVALENT = ["clock_tree_4_4", "ising_spin_fix_3_1", "apsp_2_2", "amg_poisson_2_2",
              "betweeness_centrality_16_16_2_2", "apsp_vec_barrier_16_4", "hello_world_inst"]


@pytest.mark.parametrize("name", EQUIVALENT)
def test_v3_corpus_app_converted_to_v4_gives_identical_model_states_and_metrics(name: str, tmp_path: Path):
    original = CORPUS / f"{name}.xml"
    if not original.exists():
        pytest.skip(f"{original} is not on this machine")
    converted = tmp_path / f"{name}_v4.xml"
    converted.write_text(convert(original))
    # the same model, except lines, version and defaults (which the conversion put in the instance) ...
    v3app, v4app = load(original), load(converted)
    assert v4app.graph_type.version == 4
    assert normalised(v4app.graph_type) == normalised(v3app.graph_type)
    # ... the same packed instance, byte for byte ...
    for attr in ("names", "dev_type", "props", "state", "edges", "edge_props", "edge_state", "graph_properties"):
        assert getattr(v4app.instance, attr) == getattr(v3app.instance, attr), attr
    # ... and the same run
    v3, v4 = run(original), run(converted)
    assert v4 == v3
    assert v4["states"] and v4["metrics"]["Sent messages"] > 0


# ---- optional and refused elements --------------------------------------------------------------

def doc(device_type: str, messages: str = '<MessageType id="m"/>', graph: str = "", instance: str = "") -> str:
    return (f'<?xml version="1.0"?>\n<Graphs xmlns="{V4}">\n<GraphType id="g">\n{graph}\n'
            f"<MessageTypes>\n{messages}\n</MessageTypes>\n<DeviceTypes>\n{device_type}\n</DeviceTypes>\n"
            f'</GraphType>\n<GraphInstance id="i" graphTypeId="g">\n<DeviceInstances>\n{instance}\n'
            "</DeviceInstances>\n<EdgeInstances/>\n</GraphInstance>\n</Graphs>\n")


MINIMAL = '<DeviceType id="d"><ReadyToSend/></DeviceType>'


def test_optional_elements_may_be_left_out():
    # No graph Properties/SharedCode, no device Properties/State/SharedCode/OnInit, and three ways of
    # writing an empty payload.
    messages = ('<MessageType id="m"/>\n<MessageType id="e"><Message/></MessageType>\n'
                '<MessageType id="c"><Message><![CDATA[ /* nothing */ ]]></Message></MessageType>')
    gt = load(doc(MINIMAL, messages, instance='<DevI id="x" type="d"/>')).graph_type
    assert gt.properties == Struct() and gt.shared_code == ()
    assert all(m.payload == Struct() for m in gt.message_types)
    d = gt.device_type("d")
    assert (d.properties, d.state, d.shared_code, d.on_init, d.on_hardware_idle) == (Struct(), Struct(), (), None, None)


def test_on_hardware_idle_and_on_device_idle_are_read():
    dt = ('<DeviceType id="d"><State><![CDATA[uint32_t n;]]></State><ReadyToSend/>\n'
          '<OnHardwareIdle><![CDATA[ deviceState->n++; ]]></OnHardwareIdle>\n<OnDeviceIdle/></DeviceType>')
    d = load(doc(dt)).graph_type.device_type("d")
    assert d.on_hardware_idle == Code(" deviceState->n++; ", 10, "OnHardwareIdle")


def test_indexed_output_pins_are_read():
    dt = ('<DeviceType id="d"><OutputPin name="o" messageTypeId="m" indexed="true"><OnSend/></OutputPin>'
          '<OutputPin name="p" messageTypeId="m"><OnSend/></OutputPin><ReadyToSend/></DeviceType>')
    d = load(doc(dt)).graph_type.device_type("d")
    assert [p.indexed for p in d.output_pins] == [True, False]


# supervisors (graph-schema.md s7) are read and run: tests/test_v4_supervisors.py


@pytest.mark.parametrize("element,words", [
    ("<Documentation>x</Documentation>", ["<Documentation>", "XML comment"]),
    ("<MetaData>x</MetaData>", ["<MetaData>", "XML comment"]),
    ('<HashDigest type="structural" hash="0123456789abcdef"/>', ["<HashDigest>"]),
    ("<Bogus/>", ["unexpected <Bogus> in <GraphType>"]),
])
def test_elements_v4_does_not_have_are_refused_in_the_graph_type(element: str, words: list[str]):
    xml = doc(MINIMAL, graph=element)
    with pytest.raises(GraphError) as e:
        load(xml)
    assert e.value.line == 4
    for w in words:
        assert w in str(e.value)


@pytest.mark.parametrize("device_type,words", [
    ('<DeviceType id="d"><ReadyToSend/><OnThreadIdle/></DeviceType>', ["<OnThreadIdle>", "device type 'd'"]),
    ('<DeviceType id="d"><ReadyToSend/><DeviceSharedCode/></DeviceType>', ["<DeviceSharedCode>", "<SharedCode>"]),
    ('<DeviceType id="d"><InputPin name="i" messageTypeId="m"><OnReceive/><OnReceive/></InputPin></DeviceType>',
     ["<OnReceive>", "input pin 'i'"]),
    ('<DeviceType id="d"><OutputPin name="o" messageTypeId="m" indexed="yes"/></DeviceType>', ["indexed='yes'"]),
    ('<DeviceType id="d"><OutputPin name="o" messageTypeId="nope"/></DeviceType>', ["unknown message type 'nope'"]),
    ('<DeviceType id="d"><State><![CDATA[uint32_t x = 3;]]></State></DeviceType>',
     ["<State> of device type 'd'", "no defaults"]),
    ('<DeviceType id="d"><State><x/></State></DeviceType>', ["unexpected <x> inside <State>"]),
])
def test_bad_device_types_are_refused_with_line(device_type: str, words: list[str]):
    with pytest.raises(GraphError) as e:
        load(doc(device_type))
    assert e.value.line == 9
    for w in words:
        assert w in str(e.value), str(e.value)


# ---- malformed values in a file: file and line ----------------------------------------------------

@pytest.mark.parametrize("old,new,words", [
    ('P="{1, {{1, 2}, {3, 4}}, {10, {-5}}}"', 'P="{1, {{1, 2}, {3, 4}}, {10, {-5}}"',
     ["P of device 'a'", "missing '}'"]),
    ('P="{2u, {{5, 6}}, {20}}"', 'P="{2u, {{5, 300}}, {20}}"', ["device 'b'", "300 is out of range for uint8_t"]),
    ('P="{2u, {{5, 6}}, {20}}"', 'P="{2u, {5, 6}, {20}}"', ["P of device 'b'", "grid[0]: expected '{...}'"]),
    ('S="{0, 0, 0, 0, 100ll}"', 'S="{0, 0, 0, 0, 100ll, {1}}"', ["S of device 'a'", "last[0]: expected '{...}'"]),
    ('P="{-1}"', 'P="{-1, 2}"', ["P of edge 'b:in-a:out'", "2 values for a struct of 1 members (weight)"]),
    ('S="{5}"', 'S="{.count = 5}"', ["S of edge 'a:in-b:out'", "designated initialisers"]),
    ('P="{3u, {-2, 7}, 0.5}"', 'P="{3u, {-2, 7}, 0.5x}"', ["P of the graph instance"]),
    ('<DevI id="b" type="node" P="{2u, {{5, 6}}, {20}}"/>',
     '<DevI id="b" type="node"><P>"id": 2</P></DevI>', ["<P> element in <DevI>", 'P="{1, 2}"']),
    ('type="node" P="{2u', 'type="nod" P="{2u', ["unknown device type 'nod'"]),
])
def test_malformed_instance_values_name_file_and_line(old: str, new: str, words: list[str], tmp_path: Path):
    path = _variant(old, new, tmp_path)
    with pytest.raises(GraphError) as e:
        load(path)
    assert e.value.file == str(path)
    assert e.value.line == line_of(path, new.split(">")[0] if "<DevI" in new else new)
    for w in words:
        assert w in str(e.value), str(e.value)


def _variant(old: str, new: str, tmp: Path) -> Path:
    text = STRUCTS.read_text()
    assert old in text
    path = tmp / "app.xml"
    path.write_text(text.replace(old, new, 1))
    return path


def test_malformed_declaration_in_a_file_names_its_line(tmp_path: Path):
    path = _variant("uint64_t big;\n          float f;", "uint64_t big;\n          float f[];", tmp_path)
    with pytest.raises(GraphError) as e:
        load(path)
    assert (e.value.file, e.value.line) == (str(path), line_of(path, "float f[];"))
    assert "<State> of device type 'node': array 'f' needs a positive integer length" in str(e.value)


def test_flat_integer_values_and_full_parser_pack_the_same_bytes(tmp_path: Path):
    # Given the same device values written as plain decimal (fast path) and as hex/octal (full parser)
    ring = (V4DATA / "ring-oscillator.xml").read_text()
    fast = load(ring)
    slow = load(ring.replace('P="{2, 1}"', 'P="{0x2, 01}"').replace('P="{3, 1}"', 'P="{03, 0x1u}"'))
    assert slow.instance.props == fast.instance.props
    # and an out-of-range value on the fast path is still refused, naming the device and line
    bad = tmp_path / "bad.xml"
    bad.write_text(ring.replace('P="{3, 1}"', 'P="{3, 4294967296}"'))
    with pytest.raises(GraphError, match=r"bad\.xml:\d+: .*device 'n3'.*out of range") as e:
        load(bad)
    assert e.value.line == line_of(bad, "4294967296")


def test_the_example_in_docs_formats_v4_runs_as_documented():
    text = (Path(__file__).parent.parent / "docs" / "formats-v4.md").read_text()
    xml = text.split("```xml\n", 1)[1].split("```", 1)[0]
    result = run(xml)
    states = result["states"]
    assert (states["alice"]["hits"], states["bob"]["hits"]) == (2, 3)
    assert result["metrics"]["Delivered messages"] == 3 and result["metrics"]["Cancelled sends"] == 1
    assert states["alice"]["stats"] == {"sent": 2, "got": [1, 0]}
    assert states["bob"]["stats"] == {"sent": 1, "got": [0, 2]}


def test_graph_type_reference_to_a_v4_type_file(tmp_path: Path):
    # Given the ring oscillator split into a type file and an instance file that refers to it
    ring = (V4DATA / "ring-oscillator.xml").read_text()
    start, end = ring.index("<GraphType"), ring.index("</GraphType>") + len("</GraphType>")
    (tmp_path / "types").mkdir()
    (tmp_path / "types" / "ro.xml").write_text(ring[:start] + ring[start:end] + "\n</Graphs>\n")
    inst = tmp_path / "inst.xml"
    inst.write_text(ring[:start] + '<GraphTypeReference id="ro" src="types/ro.xml"/>' + ring[end:])
    # then it runs as the single file does
    assert run(inst) == run(V4DATA / "ring-oscillator.xml")
    # and a reference to a v3 file from a v4 one is refused
    (tmp_path / "types" / "ro.xml").write_text((PSTACK / "ring-oscillator-01.xml").read_text())
    with pytest.raises(GraphError, match=r"inst\.xml:\d+: .*not a graph-schema v4 file"):
        load(inst)


def test_psim_command_runs_v4_and_its_supervisors_without_a_traceback():
    ok = subprocess.run([sys.executable, "-m", "pstack_tasks.ui.cli.psim", str(V4DATA / "ring-oscillator.xml")],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and "State [n3]: state = 0, counter = 10" in ok.stdout
    sup = subprocess.run([sys.executable, "-m", "pstack_tasks.ui.cli.psim", str(V4DATA / "supervisor.xml")],
                         capture_output=True, text=True, timeout=120)
    assert sup.returncode == 0 and "Traceback" not in sup.stderr, sup.stderr
    assert "State [d1]: done = 1" in sup.stdout


def test_typedefs_written_the_v4_way_are_types_everywhere() -> None:
    """v3's TypeDefs, bodies written as v4 declarations: a struct type and a one-member type in
    payloads, properties, state and arrays; whole values assigned in handlers."""
    result = psim(V4DATA / "typedefs.xml", options={"quiet": True, "full_state": True})
    assert result["metrics"]["Delivered messages"] == 6
    a, b = result["states"]["a"], result["states"]["b"]
    assert (a["sent"], a["got"], a["last"], b["last"]) == (3, 3, {"lo": 2, "hi": 3}, {"lo": -1, "hi": 7})
    assert (a["twice"][1]["hi"], b["twice"][1]["hi"]) == (6, 14)


@pytest.mark.parametrize("types,words", [
    ('<Types><Bogus/></Types>', ["<Bogus>", "<Types>"]),
    ('<Types><TypeDef id="t"><![CDATA[ ]]></TypeDef></Types>', ["<TypeDef> 't' declares no member"]),
    ('<Types><TypeDef id="t"><![CDATA[ uint8_t a; ]]></TypeDef><TypeDef id="t"><![CDATA[ uint8_t b; ]]>'
     '</TypeDef></Types>', ["duplicate TypeDef id 't'"]),
])
def test_bad_typedefs_are_refused_with_line(types: str, words: list[str]) -> None:
    with pytest.raises(GraphError) as e:
        load(doc(MINIMAL, graph=types))
    assert e.value.line is not None
    for w in words:
        assert w in str(e.value)


def test_an_unknown_type_name_lists_the_typedefs() -> None:
    dt = '<DeviceType id="d"><State><![CDATA[ nope_t x; ]]></State><ReadyToSend/></DeviceType>'
    graph = '<Types><TypeDef id="pair_t"><![CDATA[ int16_t lo, hi; ]]></TypeDef></Types>'
    with pytest.raises(GraphError, match=r"unknown type 'nope_t' \(supported: .*struct \{\.\.\.\}, pair_t\)"):
        load(doc(dt, graph=graph))
