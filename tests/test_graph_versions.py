"""Every graph-schema version reads the shared skeleton the same way (one walker, per-version hooks).

The v2/v3 and v4 walkers used to be copies that had drifted: ``indexed="1"`` meant "not indexed"
in v2/v3 and "indexed" in v4, v2/v3 silently ignored unknown or repeated elements inside pins and
message types, and refusals were worded differently.  Each test here runs the same document in
every version.
"""
from __future__ import annotations

import pytest

from pstack_tasks.exceptions import GraphError
from pstack_tasks.graph.elements import NAMESPACES
from pstack_tasks.graph.loader import FORMATS, load

VERSIONS = [2, 3, 4]


def doc(version: int, device_type: str, messages: str = '<MessageType id="m"/>') -> str:
    """A graph with one device type (on line 6) and one message type (on line 4)."""
    ns = f"https://poets-project.org/schemas/virtual-graph-schema-v{version}"
    return (f'<?xml version="1.0"?>\n<Graphs xmlns="{ns}">\n<GraphType id="g">\n<MessageTypes>{messages}'
            f"</MessageTypes>\n<DeviceTypes>\n{device_type}\n</DeviceTypes>\n</GraphType>\n"
            '<GraphInstance id="i" graphTypeId="g"/>\n</Graphs>\n')


def out_pin(indexed: str | None) -> str:
    attr = "" if indexed is None else f' indexed="{indexed}"'
    return f'<DeviceType id="d"><OutputPin name="o" messageTypeId="m"{attr}><OnSend/></OutputPin></DeviceType>'


def refused(xml: str) -> GraphError:
    with pytest.raises(GraphError) as e:
        load(xml)
    return e.value


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("raw,indexed", [("true", True), ("1", True), (" true ", True), ("false", False),
                                         ("0", False), (None, False)])
def test_indexed_is_an_xs_boolean_in_every_version(version: int, raw: str | None, indexed: bool) -> None:
    dt = load(doc(version, out_pin(raw))).graph_type.device_type("d")
    assert dt is not None and dt.output_pins[0].indexed is indexed


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("raw", ["yes", "True", "", "2"])
def test_indexed_that_is_not_a_boolean_is_refused_with_file_and_line(version: int, raw: str) -> None:
    e = refused(doc(version, out_pin(raw)))
    assert (e.file, e.line) == ("<xml>", 6)
    assert f"output pin 'o' of device type 'd': indexed={raw!r} is not a boolean (true, false, 1 or 0)" in str(e)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("device_type,message", [
    ('<DeviceType id="d"><OnCompute/></DeviceType>', "<OnCompute> in device type 'd': <OnCompute> is not supported"),
    ('<DeviceType id="d"><Bogus/></DeviceType>', "unexpected <Bogus> in device type 'd'"),
    ('<DeviceType id="d"><InputPin name="i" messageTypeId="m"><OnReceive/><OnReceive/></InputPin></DeviceType>',
     "unexpected <OnReceive> in input pin 'i' of device type 'd'"),
    ('<DeviceType id="d"><InputPin name="i" messageTypeId="m"><OnSend/></InputPin></DeviceType>',
     "unexpected <OnSend> in input pin 'i' of device type 'd'"),
    ('<DeviceType id="d"><OutputPin name="o" messageTypeId="m"><OnSend/><Bogus/></OutputPin></DeviceType>',
     "unexpected <Bogus> in output pin 'o' of device type 'd'"),
    ('<DeviceType id="d"><ReadyToSend>x = 1;<b/></ReadyToSend></DeviceType>',
     "unexpected <b> inside <ReadyToSend> (expected C text)"),
])
def test_refusals_read_the_same_in_every_version(version: int, device_type: str, message: str) -> None:
    e = refused(doc(version, device_type))
    assert e.line == 6
    assert message.format(v=version) in str(e)


@pytest.mark.parametrize("version", VERSIONS)
def test_a_message_type_holds_one_message_in_every_version(version: int) -> None:
    e = refused(doc(version, '<DeviceType id="d"/>', messages='<MessageType id="m"><Message/><Message/></MessageType>'))
    assert e.line == 4 and "unexpected <Message> in message type 'm'" in str(e)


@pytest.mark.parametrize("version,read", [(2, True), (3, True), (4, False)])
def test_documentation_inside_a_pin_is_skipped_in_v2_v3_and_refused_in_v4(version: int, read: bool) -> None:
    dt = ('<DeviceType id="d"><OutputPin name="o" messageTypeId="m"><Documentation>x</Documentation></OutputPin>'
          "</DeviceType>")
    if read:
        assert load(doc(version, dt)).graph_type.device_type("d") is not None
    else:
        assert "<Documentation> in output pin 'o' of device type 'd': v4 has no <Documentation>" in str(
            refused(doc(version, dt)))


def test_the_format_table_reads_every_known_namespace_with_its_own_version() -> None:
    assert sorted(FORMATS) == sorted(NAMESPACES.values())
    assert all(fmt.type_parser.version == v for v, fmt in FORMATS.items())


@pytest.mark.parametrize("version", [2, 3])
def test_supervisor_types_are_refused_before_v4(version: int) -> None:
    e = refused(doc(version, '<SupervisorType id="boss"/>'))
    assert e.line == 6
    assert f"<SupervisorType> 'boss' in <DeviceTypes>: v{version} supervisors are not supported yet" in str(e)


def test_a_v4_supervisor_type_needs_its_in_pin() -> None:
    e = refused(doc(4, '<SupervisorType id="boss"/>'))
    assert e.line == 6 and "<SupervisorType> has no <SupervisorInPin>" in str(e)
