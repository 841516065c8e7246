"""Parser tests: loader.load / schema.TypeParser / values.Packer on graph-schema v2 files.

The happy path uses pstack's three real v2 applications in tests/data/pstack; the error
table builds small v2 documents with :func:`v2_doc` and checks that every mistake ends in a
GraphError carrying the line of the offending element and a message naming the culprit.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from pstack_tasks.exceptions import GraphError
from pstack_tasks.graph.application import EDGE_WORDS, region_array
from pstack_tasks.graph.loader import load
from pstack_tasks.graph.model import Array, Scalar, Tuple
from pstack_tasks.graph.values import Packer

DATA = Path(__file__).parent / "data" / "pstack"
NS_V2 = "https://poets-project.org/schemas/virtual-graph-schema-v2"


# ---- helpers --------------------------------------------------------------------------------

def lines(*pieces: str | None) -> str:
    """Join non-empty pieces, one (or more) lines each."""
    return "\n".join(p for p in pieces if p)


def section(tag: str, body: str | None) -> str:
    return lines(f"<{tag}>", body, f"</{tag}>") if body else ""


#: message types every default device type uses
MESSAGES = lines(
    '<MessageType id="__init__"/>',
    '<MessageType id="m">',
    '<Message>',
    '<Scalar name="v" type="uint32_t"/>',
    '</Message>',
    '</MessageType>',
    '<MessageType id="other"/>',
)

INIT_PIN = '<InputPin name="__init__" messageTypeId="__init__"><OnReceive/></InputPin>'
IN_PIN = '<InputPin name="in" messageTypeId="m"><OnReceive/></InputPin>'
OUT_PIN = '<OutputPin name="out" messageTypeId="m"><OnSend/></OutputPin>'
OTHER_OUT_PIN = '<OutputPin name="other_out" messageTypeId="other"><OnSend/></OutputPin>'
DEFAULT_PINS = lines(INIT_PIN, IN_PIN, OUT_PIN, OTHER_OUT_PIN)


def device_type(id: str = "dev", properties: str = "", state: str = "", pins: str = DEFAULT_PINS,
                extra: str = "") -> str:
    """A v2 <DeviceType>: pins in{m}, out{m}, other_out{other} plus the __init__ pin."""
    return lines(f'<DeviceType id="{id}">', section("Properties", properties), section("State", state),
                 extra, pins, "<ReadyToSend/>", "</DeviceType>")


DEVICES = lines('<DevI id="a" type="dev"/>', '<DevI id="b" type="dev"/>')


def v2_doc(*, messages: str = MESSAGES, device_types: str | None = None, devices: str = DEVICES,
           edges: str = "", graph_properties: str = "", instance_properties: str = "",
           type_id: str = "g", instance_type_id: str | None = None, graph_type: bool = True,
           instance: bool = True, root: str = "Graphs", ns: str | None = NS_V2,
           instance_first: bool = False) -> str:
    """Assemble a v2 document from pieces, every element on its own line."""
    xmlns = f' xmlns="{ns}"' if ns is not None else ""
    gt = lines(f'<GraphType id="{type_id}">',
               section("Properties", graph_properties),
               section("MessageTypes", messages),
               section("DeviceTypes", device_types if device_types is not None else device_type()),
               "</GraphType>") if graph_type else ""
    gi = lines(f'<GraphInstance id="inst" graphTypeId="{instance_type_id or type_id}">',
               f"<Properties>{instance_properties}</Properties>" if instance_properties else "",
               section("DeviceInstances", devices),
               section("EdgeInstances", edges),
               "</GraphInstance>") if instance else ""
    body = [gi, gt] if instance_first else [gt, gi]
    return lines('<?xml version="1.0"?>', f"<{root}{xmlns}>", *body, f"</{root}>")


def line_of(text: str, marker: str, nth: int = 1) -> int:
    """1-based line of the nth line containing ``marker``."""
    found = [i for i, ln in enumerate(text.splitlines(), 1) if marker in ln]
    assert len(found) >= nth, f"marker {marker!r} occurs {len(found)} times in the snippet"
    if nth == 1:
        assert len(found) == 1, f"marker {marker!r} is ambiguous: lines {found}"
    return found[nth - 1]


def expect_error(xml: str, marker: str | None, *words: str, nth: int = 1) -> GraphError:
    """load(xml) must raise a GraphError at the marker's line whose message holds every word."""
    with pytest.raises(GraphError) as info:
        load(xml)
    err = info.value
    expected = line_of(xml, marker, nth) if marker is not None else None
    assert err.line == expected, f"wrong line for: {err}"
    for w in words:
        assert w in err.reason, f"{w!r} not in message: {err}"
    assert str(err).startswith(f"<xml>:{expected}: " if expected is not None else "<xml>: ")
    return err


def device_records(app, type_index: int, packer: Packer, which: str = "props") -> list[dict]:
    data = bytes(getattr(app.instance, which)[type_index])
    size = packer.size
    assert size * app.instance.counts[type_index] == len(data)
    return [packer.unpack(data[i:i + size]) for i in range(0, len(data), size)]


def edge_tuples(app) -> list[tuple[int, ...]]:
    """(src, src pin, dst, dst pin, edge-data index) of every edge; the sendIndex word is left out."""
    e = list(app.instance.edges)
    assert len(e) % EDGE_WORDS == 0
    return [tuple(e[i:i + 5]) for i in range(0, len(e), EDGE_WORDS)]


# ---- happy path: pstack's own applications --------------------------------------------------

def test_basic_01():
    app = load(DATA / "basic-01.xml")
    gt, inst = app.graph_type, app.instance
    assert app.file == str(DATA / "basic-01.xml")
    assert gt.id == "test" and gt.version == 2
    assert [m.id for m in gt.message_types] == ["__init__", "message"]
    assert not gt.message_type("__init__").payload
    assert [f.name for f in gt.message_type("message").payload.fields] == ["value"]
    assert [d.id for d in gt.device_types] == ["device"]
    dev = gt.device_types[0]
    assert [p.name for p in dev.input_pins] == ["__init__", "input"]
    assert [p.message_type for p in dev.input_pins] == ["__init__", "message"]
    assert [p.name for p in dev.output_pins] == ["output"]
    assert "deviceState->counter = 0;" in dev.input_pins[0].on_receive.text
    assert "rts = " in dev.ready_to_send.text and dev.ready_to_send.line == 41

    assert inst.id == "graph1"
    assert inst.names == ["device0", "device1"]
    assert inst.index == {"device0": 0, "device1": 1}
    assert list(inst.dev_type) == [0, 0]
    assert inst.counts == [2]
    # device1:input-device0:output -> src device0 pin output(0), dst device1 pin input(1)
    assert edge_tuples(app) == [(0, 0, 1, 1, 0)]
    assert inst.edge_count == 1 and inst.edge_counts == {(0, 1): 1}
    assert device_records(app, 0, Packer(dev.properties)) == [{"id": 0}, {"id": 1}]
    assert device_records(app, 0, Packer(dev.state), "state") == [{"counter": 0}, {"counter": 0}]
    assert inst.graph_properties == b""


def test_basic_02_two_device_types():
    app = load(str(DATA / "basic-02.xml"))
    gt, inst = app.graph_type, app.instance
    assert [m.id for m in gt.message_types] == ["__init__", "message_type_a", "message_type_b"]
    assert [d.id for d in gt.device_types] == ["device_type_x", "device_type_y"]
    x, y = gt.device_types
    assert x.input_pin("input").message_type == "message_type_b"
    assert x.output_pin("output").message_type == "message_type_a"
    assert y.input_pin("input").message_type == "message_type_a"
    assert inst.names == ["device0", "device1"]
    assert list(inst.dev_type) == [0, 1]
    assert inst.counts == [1, 1]
    assert edge_tuples(app) == [(0, 0, 1, 1, 0), (1, 0, 0, 1, 0)]
    assert inst.edge_counts == {(1, 1): 1, (0, 1): 1}
    assert device_records(app, 0, Packer(x.properties)) == [{"id": 0}]
    assert device_records(app, 1, Packer(y.properties)) == [{"id": 1}]
    assert device_records(app, 1, Packer(y.state), "state") == [{"counter": 0, "rts": 0}]


def test_ring_oscillator_01():
    app = load(DATA / "ring-oscillator-01.xml")
    gt, inst = app.graph_type, app.instance
    assert gt.id == "ro"
    node = gt.device_type("node")
    assert [d.id for d in gt.device_types] == ["node"]
    assert [p.name for p in node.input_pins] == ["__init__", "toggle_in"]
    assert [p.name for p in node.output_pins] == ["toggle_out"]
    assert [f.name for f in node.state.fields] == ["state", "counter", "toggle_buffer_dst", "toggle_buffer_ptr"]
    buf = node.state.field("toggle_buffer_dst").type
    assert isinstance(buf, Array) and buf.length == 1024 and buf.element == Scalar("uint32_t")
    assert node.state.size == 4 * (1024 + 3)
    assert inst.names == ["n0", "n1", "n2", "n3"]
    assert list(inst.dev_type) == [0, 0, 0, 0]
    # n{i+1}:toggle_in-n{i}:toggle_out; eidx counts edges into (node, toggle_in)
    assert edge_tuples(app) == [(0, 0, 1, 1, 0), (1, 0, 2, 1, 1), (2, 0, 3, 1, 2), (3, 0, 0, 1, 3)]
    assert inst.edge_counts == {(0, 1): 4}
    assert device_records(app, 0, Packer(node.properties)) == [{"id": i, "outdegree": 1} for i in range(4)]
    states = device_records(app, 0, Packer(node.state), "state")
    assert states == [{"state": 0, "counter": 0, "toggle_buffer_dst": [0] * 1024, "toggle_buffer_ptr": 0}] * 4


def test_load_accepts_bytes_and_text():
    text = (DATA / "basic-01.xml").read_text()
    for src in (text, text.encode()):
        app = load(src)
        assert app.file == "<xml>" and app.instance.names == ["device0", "device1"]


def test_region_array():
    inst = load(DATA / "ring-oscillator-01.xml").instance
    regions, used = region_array(inst, None)
    assert list(regions) == [0, 0, 0, 0] and used == [0]
    regions, used = region_array(inst, {"n1": 1})
    assert list(regions) == [0, 1, 0, 0] and used == [0, 1]
    regions, used = region_array(inst, {"n0": 2, "n1": 2, "n2": 2, "n3": 3})
    assert list(regions) == [2, 2, 2, 3] and used == [2, 3]


# ---- happy path: typed values ---------------------------------------------------------------

VALUE_PROPS = lines(
    '<Scalar name="a" type="uint32_t" default="5"/>',
    '<Scalar name="b" type="int8_t"/>',
    '<Array name="v" type="uint16_t" length="3"/>',
    '<Array name="label" type="char" length="8"/>',
    '<Array name="dv" type="int32_t" length="2" default="[7, 8]"/>',
    '<Scalar name="f" type="float" default="1.5"/>',
    '<Scalar name="d" type="double"/>',
    '<Tuple name="t">',
    '<Scalar name="x" type="uint8_t" default="3"/>',
    '<Scalar name="y" type="int64_t"/>',
    '</Tuple>',
    '<Array name="pts" length="2">',
    '<Tuple name="p"><Scalar name="x" type="int16_t"/><Scalar name="y" type="int16_t" default="-1"/></Tuple>',
    '</Array>',
    '<Array name="s" type="char" length="4" default="ab"/>',
)


def test_values_defaults_arrays_and_char_strings():
    xml = v2_doc(
        device_types=device_type(properties=VALUE_PROPS, state='<Scalar name="n" type="uint64_t" default="7"/>'),
        devices=lines(
            '<DevI id="a" type="dev"><P>"b": -2, "v": [1, 2], "label": "hi", "d": 0.25, '
            '"t": {"y": -9}, "pts": [{"x": 4}], "s": "xyz"</P></DevI>',
            '<DevI id="b" type="dev"/>',
            '<DevI id="c" type="dev">',
            '<P>',
            '{"a": 4294967295, "b": -128, "v": [65535, 0, 1], "label": "12345678", "dv": [0],',
            ' "f": -0.5, "t": {"x": 255, "y": 9223372036854775807}, "pts": [{}, {"x": -32768, "y": 32767}],',
            ' "s": "\u00e9"}',
            '</P>',
            '</DevI>',
        ))
    app = load(xml)
    dev = app.graph_type.device_types[0]
    props = device_records(app, 0, Packer(dev.properties))
    chars = lambda s, n: list(s.encode()) + [0] * (n - len(s.encode()))  # noqa: E731
    assert props[0] == {"a": 5, "b": -2, "v": [1, 2, 0], "label": chars("hi", 8), "dv": [7, 8], "f": 1.5,
                        "d": 0.25, "t": {"x": 3, "y": -9}, "pts": [{"x": 4, "y": -1}, {"x": 0, "y": -1}],
                        "s": chars("xyz", 4)}
    # no <P>: all defaults, everything else zero
    assert props[1] == {"a": 5, "b": 0, "v": [0, 0, 0], "label": [0] * 8, "dv": [7, 8], "f": 1.5, "d": 0.0,
                        "t": {"x": 3, "y": 0}, "pts": [{"x": 0, "y": -1}] * 2, "s": chars("ab", 4)}
    # extremes, braces around the body, a partial array over an array default, non-ASCII chars
    assert props[2]["a"] == 4294967295 and props[2]["b"] == -128
    assert props[2]["v"] == [65535, 0, 1] and props[2]["label"] == chars("12345678", 8)
    assert props[2]["dv"] == [0, 8] and props[2]["f"] == -0.5
    assert props[2]["t"] == {"x": 255, "y": 2**63 - 1}
    assert props[2]["pts"] == [{"x": 0, "y": -1}, {"x": -32768, "y": 32767}]
    assert bytes(b & 0xFF for b in props[2]["s"]) == "\u00e9".encode() + b"\0\0"
    assert device_records(app, 0, Packer(dev.state), "state") == [{"n": 7}] * 3
    # the model keeps the defaults
    assert dev.properties.field("a").type == Scalar("uint32_t", 5)
    assert isinstance(dev.properties.field("t").type, Tuple)


def test_graph_properties_and_edge_properties():
    pins = lines(
        INIT_PIN,
        '<InputPin name="in" messageTypeId="m">',
        '<Properties><Scalar name="w" type="int32_t" default="1"/></Properties>',
        '<State><Scalar name="seen" type="uint8_t"/></State>',
        '<OnReceive/>',
        '</InputPin>',
        OUT_PIN)
    xml = v2_doc(
        graph_properties='<Scalar name="size" type="uint32_t" default="10"/>\n<Scalar name="k" type="double"/>',
        instance_properties='"k": 2.5',
        device_types=device_type(pins=pins),
        edges=lines('<EdgeI path="b:in-a:out"><P>"w": -3</P></EdgeI>',
                    '<EdgeI path="a:in-b:out"/>',
                    '<EdgeI path="b:in-b:out"><P>"w": 4</P><S>"seen": 2</S></EdgeI>'))
    app = load(xml)
    gt, inst = app.graph_type, app.instance
    assert Packer(gt.properties).unpack(inst.graph_properties) == {"size": 10, "k": 2.5}
    assert edge_tuples(app) == [(0, 0, 1, 1, 0), (1, 0, 0, 1, 1), (1, 0, 1, 1, 2)]
    pin = gt.device_types[0].input_pin("in")
    pk, sk = Packer(pin.properties), Packer(pin.state)
    data = bytes(inst.edge_props[(0, 1)])
    assert [pk.unpack(data[i:i + 4]) for i in range(0, len(data), 4)] == [{"w": -3}, {"w": 1}, {"w": 4}]
    assert [sk.unpack(bytes([b])) for b in inst.edge_state[(0, 1)]] == [{"seen": 0}, {"seen": 0}, {"seen": 2}]


def test_pin_numbers_follow_document_order_per_direction():
    pins = lines(OUT_PIN, '<InputPin name="in2" messageTypeId="other"><OnReceive/></InputPin>',
                 OTHER_OUT_PIN, INIT_PIN, IN_PIN)
    xml = v2_doc(device_types=device_type(pins=pins),
                 edges=lines('<EdgeI path="a:in-b:out"/>', '<EdgeI path="b:in2-a:other_out"/>',
                             '<EdgeI path="a:in2-a:other_out"/>'))
    app = load(xml)
    dev = app.graph_type.device_types[0]
    assert [p.name for p in dev.input_pins] == ["in2", "__init__", "in"]
    assert [p.name for p in dev.output_pins] == ["out", "other_out"]
    assert edge_tuples(app) == [(1, 0, 0, 2, 0), (0, 1, 1, 0, 0), (0, 1, 0, 0, 1)]


# ---- error table ----------------------------------------------------------------------------

@pytest.mark.parametrize("bad, marker, word", [
    ('<DevI id="a" type="dev"></Devi>', "</Devi>", "Devi"),
    ('<DevI id="a" type=dev/>', "type=dev", "malformed XML"),
    ('<DevI id="a" type="dev" id="b"/>', 'id="b"', "id"),
    ('<DevI id="a" type="dev"><P>&bogus;</P></DevI>', "&bogus;", "bogus"),
])
def test_malformed_xml(bad, marker, word):
    xml = v2_doc(devices=bad)
    err = expect_error(xml, marker, "malformed XML", word)
    assert not re.search(r"line \d+, column \d+$", err.reason)  # the position is in .line already


def test_malformed_xml_in_root():
    xml = '<?xml version="1.0"?>\n<Graphs xmlns="%s"\n<GraphType id="g"/>\n</Graphs>' % NS_V2
    expect_error(xml, "<GraphType", "malformed XML")


def test_truncated_document():
    xml = v2_doc()
    xml = xml[:xml.index("</DeviceInstances>")]
    with pytest.raises(GraphError, match="malformed XML") as info:
        load(xml)
    assert info.value.line is not None


def test_unknown_namespace():
    expect_error(v2_doc(ns="https://example.org/not-poets"), "<Graphs", "unknown namespace",
                 "https://example.org/not-poets")


def test_no_namespace():
    expect_error(v2_doc(ns=None), "<Graphs", "namespace")


def test_root_is_not_graphs():
    expect_error(v2_doc(root="Graph"), "<Graph ", "<Graph>", "<Graphs>")


def test_unknown_device_type():
    xml = v2_doc(devices=lines('<DevI id="a" type="dev"/>', '<DevI id="b" type="nosuch"/>'))
    expect_error(xml, 'type="nosuch"', "'b'", "unknown device type", "'nosuch'")


def test_unknown_message_type_on_pin():
    pins = lines(INIT_PIN, '<InputPin name="in" messageTypeId="nosuch"><OnReceive/></InputPin>')
    expect_error(v2_doc(device_types=device_type(pins=pins)), 'messageTypeId="nosuch"',
                 "'in'", "unknown message type", "'nosuch'")


def test_pin_without_message_type():
    pins = lines(INIT_PIN, '<OutputPin name="out"><OnSend/></OutputPin>')
    expect_error(v2_doc(device_types=device_type(pins=pins)), '<OutputPin name="out">', "'out'", "messageTypeId")


@pytest.mark.parametrize("path, words", [
    ("b:nosuch-a:out", ["'nosuch'", "no input pin", "'dev'"]),
    ("b:in-a:nosuch", ["'nosuch'", "no output pin", "'dev'"]),
    ("b:out-a:out", ["'out'", "no input pin"]),      # an output used as an input
    ("b:in-a:in", ["'in'", "no output pin"]),        # an input used as an output
])
def test_edge_pin_does_not_exist(path, words):
    expect_error(v2_doc(edges=f'<EdgeI path="{path}"/>'), path, path, *words)


@pytest.mark.parametrize("path, words", [
    ("zz:in-a:out", ["unknown destination device", "'zz'"]),
    ("a:in-zz:out", ["unknown source device", "'zz'"]),
    (":in-a:out", ["unknown destination device", "''"]),
])
def test_edge_unknown_device(path, words):
    edges = lines('<EdgeI path="b:in-a:out"/>', f'<EdgeI path="{path}"/>')
    expect_error(v2_doc(edges=edges), f'"{path}"', path, *words)


def test_edge_message_type_mismatch():
    expect_error(v2_doc(edges='<EdgeI path="b:in-a:other_out"/>'), "b:in-a:other_out",
                 "'other_out'", "'other'", "'in'", "'m'")


@pytest.mark.parametrize("path", ["b:in", "b:in-a", "b-a", "b:in:a:out", "b:in-a:out-c", "", "b:1in-a:out"])
def test_malformed_edge_path(path):
    expect_error(v2_doc(edges=f'<EdgeI x="1" path="{path}"/>'), '<EdgeI x="1"', "malformed edge path",
                 repr(path))


def test_edge_without_path():
    expect_error(v2_doc(edges='<EdgeI/>'), "<EdgeI/>", "malformed edge path")


def test_duplicate_device_id():
    xml = v2_doc(devices=lines('<DevI id="a" type="dev"/>', '<DevI id="b" type="dev"/>', '<DevI id="a" type="dev"/>'))
    expect_error(xml, '<DevI id="a"', "duplicate device id", "'a'", nth=2)


def test_device_without_id():
    expect_error(v2_doc(devices='<DevI type="dev"/>'), "<DevI", "<DevI>", "id")


def test_duplicate_device_type_id():
    xml = v2_doc(device_types=lines(device_type(), device_type(id="other"), device_type()))
    expect_error(xml, '<DeviceType id="dev">', "duplicate device type id", "'dev'", nth=2)


def test_duplicate_message_type_id():
    messages = lines(MESSAGES, '<MessageType id="m"/>')
    expect_error(v2_doc(messages=messages), '<MessageType id="m"/>', "duplicate message type id", "'m'")


@pytest.mark.parametrize("second", [
    '<InputPin name="in" messageTypeId="other"><OnReceive/></InputPin>',
    '<OutputPin name="in" messageTypeId="m"><OnSend/></OutputPin>',
])
def test_duplicate_pin_name(second):
    pins = lines(DEFAULT_PINS, second)
    expect_error(v2_doc(device_types=device_type(pins=pins)), second, "duplicate pin name", "'in'", "'dev'")


@pytest.mark.parametrize("where", ["state", "properties"])
def test_duplicate_member_name(where):
    members = lines('<Scalar name="x" type="uint32_t"/>', '<Scalar name="y" type="uint32_t"/>',
                    '<Array name="x" type="uint8_t" length="2"/>')
    xml = v2_doc(device_types=device_type(**{where: members}))
    expect_error(xml, '<Array name="x"', "duplicate member name", "'x'")


def test_duplicate_member_name_in_tuple_and_message():
    members = '<Tuple name="t">\n<Scalar name="x" type="uint32_t"/>\n<Scalar name="x" type="uint8_t"/>\n</Tuple>'
    expect_error(v2_doc(device_types=device_type(state=members)), '<Scalar name="x" type="uint8_t"/>',
                 "duplicate member name", "'x'")
    messages = lines(MESSAGES, '<MessageType id="m2"><Message>', '<Scalar name="v" type="uint32_t"/>',
                     '<Scalar name="v" type="uint16_t"/>', '</Message></MessageType>')
    expect_error(v2_doc(messages=messages), '<Scalar name="v" type="uint16_t"/>', "duplicate member name", "'v'")


@pytest.mark.parametrize("body", ['"x": ', '"x" 1', "x: 1", '"x": 1,,', '"x": [1, 2', "[1, 2]", '"x": 01'])
def test_malformed_p(body):
    xml = v2_doc(device_types=device_type(properties='<Scalar name="x" type="uint32_t"/>'),
                 devices=lines('<DevI id="a" type="dev"/>', '<DevI id="b" type="dev">', f"<P>{body}</P>", "</DevI>"))
    expect_error(xml, "<P>", "malformed <P>", "'b'")


def test_malformed_edge_p():
    pins = lines(INIT_PIN, '<InputPin name="in" messageTypeId="m">',
                 '<Properties><Scalar name="w" type="uint32_t"/></Properties>', "<OnReceive/></InputPin>", OUT_PIN)
    xml = v2_doc(device_types=device_type(pins=pins),
                 edges=lines('<EdgeI path="b:in-a:out">', '<P>"w": nope</P>', "</EdgeI>"))
    expect_error(xml, "<P>", "malformed <P>", "b:in-a:out")


def test_malformed_graph_properties():
    xml = v2_doc(graph_properties='<Scalar name="k" type="uint32_t"/>', instance_properties='"k": ]')
    expect_error(xml, '"k": ]', "malformed graph <Properties>")


PROPS_X = lines('<Scalar name="x" type="uint32_t"/>', '<Scalar name="small" type="uint8_t"/>',
                '<Scalar name="f" type="float"/>', '<Array name="arr" type="int8_t" length="2"/>',
                '<Array name="str" type="char" length="3"/>',
                '<Tuple name="t"><Scalar name="in" type="int16_t"/></Tuple>')


@pytest.mark.parametrize("body, words", [
    ('"nosuch": 1', ["'b'", "nosuch", "no such member", "x"]),
    ('"t": {"nosuch": 1}', ["'b'", "t.nosuch", "no such member", "in"]),
    ('"x": "3"', ["'b'", "x", "uint32_t", "'3'"]),
    ('"x": 1.5', ["'b'", "x", "uint32_t", "1.5"]),
    ('"x": [1]', ["'b'", "x", "uint32_t"]),
    ('"f": "1.0"', ["'b'", "f", "number"]),
    ('"arr": 1', ["'b'", "arr", "list"]),
    ('"arr": [1, 2, 3]', ["'b'", "arr", "3 values", "length 2"]),
    ('"str": "abcd"', ["'b'", "str", "char[3]"]),
    ('"t": 5', ["'b'", "t", "object"]),
    ('"small": 300', ["'b'", "small", "300", "uint8_t"]),
    ('"small": -1', ["'b'", "small", "-1", "uint8_t"]),
    ('"x": -1', ["'b'", "x", "-1", "uint32_t"]),
    ('"x": 4294967296', ["'b'", "x", "4294967296", "uint32_t"]),
    ('"arr": [0, 128]', ["'b'", "arr[1]", "128", "int8_t"]),
    ('"t": {"in": 40000}', ["'b'", "t.in", "40000", "int16_t"]),
    ('"f": 1e300', ["'b'", "f", "float"]),
])
def test_bad_p_value(body, words):
    xml = v2_doc(device_types=device_type(properties=PROPS_X),
                 devices=lines('<DevI id="a" type="dev"><P>"x": 1</P></DevI>', '<DevI id="b" type="dev">',
                               f"<P>{body}</P>", "</DevI>"))
    expect_error(xml, f"<P>{body}", *words)


def test_bad_p_value_on_one_line_with_devi():
    xml = v2_doc(device_types=device_type(properties=PROPS_X),
                 devices='<DevI id="b" type="dev"><P>"x": -1</P></DevI>')
    expect_error(xml, '<DevI id="b"', "'b'", "x", "uint32_t")


def test_p_for_device_without_properties():
    expect_error(v2_doc(devices='<DevI id="a" type="dev"><P>"x": 1</P></DevI>'), "<DevI", "x", "no such member")


def test_bad_edge_and_graph_values():
    pins = lines(INIT_PIN, '<InputPin name="in" messageTypeId="m">',
                 '<Properties><Scalar name="w" type="uint8_t"/></Properties>', "<OnReceive/></InputPin>", OUT_PIN)
    xml = v2_doc(device_types=device_type(pins=pins),
                 edges=lines('<EdgeI path="b:in-a:out">', '<P>"w": 256</P>', "</EdgeI>"))
    expect_error(xml, '"w": 256', "b:in-a:out", "w", "256", "uint8_t")
    xml = v2_doc(graph_properties='<Scalar name="k" type="uint32_t"/>', instance_properties='"q": 1')
    expect_error(xml, '"q": 1', "graph properties", "q", "no such member")


@pytest.mark.parametrize("member, words", [
    ('<Scalar name="h" type="half"/>', ["'h'", "'half'", "unsupported type"]),
    ('<Scalar name="s" type="std::string"/>', ["'s'", "'std::string'", "unsupported type"]),
    ('<Scalar name="b" type="bool"/>', ["'b'", "'bool'", "unsupported type"]),
    ('<Array name="a" type="half" length="2"/>', ["'a'", "'half'", "unsupported type"]),
    ('<Scalar name="n"/>', ["'n'", "no type"]),
    ('<Union name="u">', ["'u'", "union", "not supported"]),
    ('<Array name="z" type="uint8_t" length="0"/>', ["'z'", "positive", "'0'"]),
    ('<Array name="z" type="uint8_t" length="-2"/>', ["'z'", "positive", "'-2'"]),
    ('<Array name="z" type="uint8_t" length="two"/>', ["'z'", "positive", "'two'"]),
    ('<Array name="z" type="uint8_t" length="1.5"/>', ["'z'", "positive", "'1.5'"]),
    ('<Array name="z" type="uint8_t"/>', ["'z'", "positive", "None"]),
    ('<Array name="z" length="2">', ["'z'", "type attribute or exactly one member"]),
    ('<Scalar type="uint8_t"/>', ["<Scalar>", "'name'"]),
    ('<Scalar name="2x" type="uint8_t"/>', ["'2x'", "identifier"]),
    ('<Vector name="v" type="uint8_t"/>', ["<Vector>"]),
])
def test_unsupported_members(member, words):
    body = member
    if member.startswith("<Union"):
        body = lines(member, '<Scalar name="i" type="int32_t"/>', '<Scalar name="f" type="float"/>', "</Union>")
    elif member.startswith('<Array name="z" length="2">'):
        body = lines(member, '<Scalar name="i" type="int32_t"/>', '<Scalar name="f" type="float"/>', "</Array>")
    xml = v2_doc(device_types=device_type(state=body))
    expect_error(xml, member, *words)


@pytest.mark.parametrize("member, words", [
    ('<Scalar name="x" type="uint32_t" default="&quot;abc&quot;"/>', ["x", "bad default", "uint32_t", "'abc'"]),
    ('<Scalar name="x" type="uint32_t" default="abc"/>', ["'x'", "malformed default", "'abc'"]),
    ('<Scalar name="x" type="uint8_t" default="300"/>', ["x", "bad default", "300", "uint8_t"]),
    ('<Scalar name="x" type="int8_t" default="-129"/>', ["x", "bad default", "-129", "int8_t"]),
    ('<Scalar name="x" type="float" default="1e300"/>', ["x", "bad default", "float"]),
    ('<Array name="x" type="uint8_t" length="2" default="[1, 2, 3]"/>', ["x", "bad default", "3 values"]),
    ('<Array name="x" type="char" length="2" default="abc"/>', ["x", "bad default", "char[2]"]),
])
def test_bad_default(member, words):
    xml = v2_doc(device_types=device_type(properties=member))
    expect_error(xml, member, *words)


def test_init_pin_with_wrong_message_type():
    pins = lines(IN_PIN, '<InputPin name="__init__" messageTypeId="m"><OnReceive/></InputPin>')
    expect_error(v2_doc(device_types=device_type(pins=pins)), '<InputPin name="__init__"', "__init__", "'dev'")


def test_missing_graph_type():
    xml = v2_doc(graph_type=False)
    expect_error(xml, '<DevI id="a"', "<GraphType>")
    xml = v2_doc(graph_type=False, devices="")
    expect_error(xml, "<GraphInstance", "<GraphType>")
    # an instance that comes before its graph type is refused the same way
    expect_error(v2_doc(instance_first=True), '<DevI id="a"', "<GraphType>")


def test_file_without_graph_type_or_instance():
    with pytest.raises(GraphError, match="no <GraphType>") as info:
        load('<?xml version="1.0"?>\n<Graphs xmlns="%s"/>' % NS_V2)
    assert info.value.line is None
    with pytest.raises(GraphError, match="no <GraphInstance>") as info:
        load(v2_doc(instance=False))
    assert info.value.line is None


def test_graph_type_without_message_or_device_types():
    xml = lines('<?xml version="1.0"?>', f'<Graphs xmlns="{NS_V2}">', '<GraphType id="g">',
                section("DeviceTypes", device_type(pins="")), "</GraphType>", "</Graphs>")
    expect_error(xml, "<GraphType", "'g'", "<MessageTypes>")


def test_graph_instance_type_mismatch():
    expect_error(v2_doc(instance_type_id="other_graph"), "<GraphInstance", "'other_graph'", "'g'")


def test_two_graph_types_or_instances():
    xml = v2_doc()
    gt = xml[xml.index("<GraphType"):xml.index("</GraphType>") + len("</GraphType>")]
    twice = xml.replace(gt, gt + "\n" + gt)
    expect_error(twice, "<GraphType", "more than one <GraphType>", nth=2)
    gi = xml[xml.index("<GraphInstance"):xml.index("</GraphInstance>") + len("</GraphInstance>")]
    twice = xml.replace(gi, gi + "\n" + gi.replace('"a"', '"c"').replace('"b"', '"d"'))
    expect_error(twice, "<GraphInstance", "more than one <GraphInstance>", nth=2)


def test_external_types_are_read_as_external_device_types():
    ext = lines('<ExternalType id="ext">', IN_PIN, "</ExternalType>")
    xml = v2_doc(device_types=lines(device_type(), ext))
    assert [(d.id, d.external) for d in load(xml.encode()).graph_type.device_types] == [("dev", False), ("ext", True)]


@pytest.mark.parametrize("tag", ["SupervisorType", "SupervisorDeviceType"])
def test_supervisor_type_not_supported(tag):
    sup = lines(f'<{tag} id="sup">', IN_PIN, f"</{tag}>")
    xml = v2_doc(device_types=lines(device_type(), sup))
    expect_error(xml, f"<{tag}", f"<{tag}>", "'sup'", "not supported yet")


def test_ext_instances_are_devices():
    xml = v2_doc(devices=lines('<DevI id="a" type="dev"/>', '<ExtI id="x" type="dev"/>'))
    assert load(xml.encode()).instance.names == ["a", "x"]


def test_graph_type_reference_to_a_missing_file_is_named():
    xml = v2_doc(graph_type=False).replace("<GraphInstance", '<GraphTypeReference id="g" src="t.xml"/>\n<GraphInstance')
    expect_error(xml, "<GraphTypeReference", "<GraphTypeReference>", "no such file", "t.xml")


def test_on_compute_not_supported():
    xml = v2_doc(device_types=device_type(extra="<OnCompute/>"))
    expect_error(xml, "<OnCompute", "<OnCompute>", "'dev'")


def test_unexpected_elements():
    expect_error(v2_doc(device_types=device_type(extra="<Bogus/>")), "<Bogus", "<Bogus>", "'dev'")
    expect_error(v2_doc(messages=lines(MESSAGES, "<Bogus/>")), "<Bogus", "<Bogus>", "<MessageTypes>")
    expect_error(v2_doc(device_types=lines(device_type(), "<Bogus/>")), "<Bogus", "<Bogus>", "<DeviceTypes>")


def test_region_map_errors():
    inst = load(DATA / "ring-oscillator-01.xml").instance
    with pytest.raises(GraphError, match="'n9'"):
        region_array(inst, {"n0": 1, "n9": 1})
    for bad in (-1, "1", 1.0, True, None):
        with pytest.raises(GraphError, match="'n1'") as info:
            region_array(inst, {"n1": bad})
        assert repr(bad) in info.value.reason


def test_missing_file(tmp_path):
    missing = tmp_path / "nope.xml"
    for src in (missing, str(missing)):
        with pytest.raises(GraphError) as info:
            load(src)
        assert info.value.file == str(missing)
        assert info.value.line is None
        assert str(info.value) == f"{missing}: no such file"
    with pytest.raises(GraphError, match="cannot read the file") as info:
        load(tmp_path)  # a directory
    assert info.value.file == str(tmp_path)


def test_errors_name_the_file(tmp_path):
    path = tmp_path / "app.xml"
    xml = v2_doc(devices=lines('<DevI id="a" type="dev"/>', '<DevI id="b" type="nosuch"/>'))
    path.write_text(xml)
    with pytest.raises(GraphError) as info:
        load(path)
    line = line_of(xml, 'type="nosuch"')
    assert info.value.file == str(path) and info.value.line == line
    assert str(info.value).startswith(f"{path}:{line}: ")
    path.write_text(xml.replace('type="nosuch"/>', 'type="dev">'))
    with pytest.raises(GraphError, match="malformed XML") as info:
        load(path)
    assert info.value.file == str(path)


def test_edge_values_naming_unknown_members():
    # a pin without edge properties/state still refuses <P>/<S> values
    xml = v2_doc(edges=lines('<EdgeI path="b:in-a:out"/>', '<EdgeI path="a:in-b:out">', '<P>"w": 1</P>', "</EdgeI>"))
    expect_error(xml, '"w": 1', "a:in-b:out", "w", "no such member")
    xml = v2_doc(edges=lines('<EdgeI path="a:in-b:out">', '<S>"s": 1</S>', "</EdgeI>"))
    expect_error(xml, '"s": 1', "a:in-b:out", "s", "no such member")
    pins = lines(INIT_PIN, '<InputPin name="in" messageTypeId="m">',
                 '<State><Scalar name="seen" type="uint8_t"/></State>', "<OnReceive/></InputPin>", OUT_PIN)
    xml = v2_doc(device_types=device_type(pins=pins), edges=lines('<EdgeI path="a:in-b:out">', '<P>"seen": 1</P>',
                                                                  "</EdgeI>"))
    expect_error(xml, '"seen": 1', "a:in-b:out", "seen", "no such member")


def test_device_state_values_rejected():
    # v2 has no <S>, but a device <S> is packed over the state defaults and checked the same way
    xml = v2_doc(device_types=device_type(state='<Scalar name="n" type="uint8_t"/>'),
                 devices=lines('<DevI id="a" type="dev">', '<S>"n": 256</S>', "</DevI>"))
    expect_error(xml, '"n": 256', "state of device 'a'", "n", "256", "uint8_t")
