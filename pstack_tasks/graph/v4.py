"""Graph-schema v4: the element handling, into the same model the v3 parser builds.

v4 keeps v3's skeleton (graph-schema.md section 9) but writes typed data as C declarations and
instance values as C brace initialisers in attributes (``cdecl.py`` parses both).  This module
walks a v4 ``<GraphType>`` into :class:`GraphType` (``version=4``; handler code is v3 dialect)
and adapts ``P``/``S`` attributes of ``GraphInstance``/``DevI``/``EdgeI`` for the streaming loader.
It is hooked in with two small dispatches (``TypeParser.parse`` and ``loader.load``) so the v3
code stays the one place that checks devices, edges and values.

Refused with file:line and the element: v4 supervisors (``SupervisorType``, ``SupervisorInPin``,
``SupervisorOutPin``), ``ExternalType``, v2/v3-only elements (``Documentation``, ``MetaData``,
``Types``, ``HashDigest``, ``OnThreadIdle``, ...), and child ``<P>``/``<S>`` value elements.
"""
from __future__ import annotations

import json
import logging
from typing import Any

from lxml import etree

from pstack_tasks.exceptions import GraphError
from pstack_tasks.graph.cdecl import flat_ints, int_member_names, parse_struct, parse_values

# loader imports this module only inside load(), so importing it here makes no cycle
from pstack_tasks.graph.loader import EDGE_PATH, _InstanceBuilder
from pstack_tasks.graph.model import Code, DeviceType, GraphType, InputPin, MessageType, OutputPin, Struct
from pstack_tasks.graph.type_parser import GraphTypeChecks, children, local

logger = logging.getLogger(__name__)

SUPERVISOR_REFUSAL = "v4 supervisors are not supported yet"
#: v2/v3 elements that v4 dropped (graph-schema.md section 9), with what to do instead
DROPPED = {
    "Documentation": "v4 has no <Documentation>; use an XML comment",
    "MetaData": "v4 has no <MetaData>; use an XML comment",
    "HashDigest": "v4 has no <HashDigest>",
    "Types": "v4 has no TypeDefs; declare the struct members directly",
    "DeviceSharedCode": "<DeviceSharedCode> is v2; use <SharedCode>",
    "OnThreadIdle": "<OnThreadIdle> is not a v4 handler",
    "OnCompute": "<OnCompute> is v2 only",
}


def element_text(el: etree._Element) -> str:
    """An element's text with comments blanked to newlines, so offsets still give file lines."""
    parts = [el.text or ""]
    for c in el:
        if isinstance(c.tag, str):
            raise GraphError(f"unexpected <{local(c)}> inside <{local(el)}> (expected C text)", None, c.sourceline)
        parts.append("\n" * (c.text or "").count("\n"))
        parts.append(c.tail or "")
    return "".join(parts)


class TypeParserV4(GraphTypeChecks):
    """Turns one v4 ``<GraphType>`` element into a :class:`GraphType`."""

    def __init__(self, file: str) -> None:
        self.file = file

    def refuse(self, el: etree._Element, where: str) -> GraphError:
        tag = local(el)
        if tag.startswith("Supervisor"):
            name = f" {el.get('id')!r}" if tag == "SupervisorType" else ""
            return self.error(f"<{tag}>{name} in {where}: {SUPERVISOR_REFUSAL}", el)
        if tag == "ExternalType":
            return self.error(f"<ExternalType> {el.get('id')!r}: externals are not supported yet", el)
        if tag in DROPPED:
            return self.error(f"<{tag}> in {where}: {DROPPED[tag]}", el)
        return self.error(f"unexpected <{tag}> in {where}", el)

    def text(self, el: etree._Element) -> str:
        try:
            return element_text(el)
        except GraphError as e:
            raise GraphError(e.reason, self.file, e.line) from None

    def struct(self, el: etree._Element | None, what: str) -> Struct:
        if el is None:
            return Struct()
        return parse_struct(self.text(el), self.file, el.sourceline, what)

    def code(self, el: etree._Element | None, what: str) -> Code:
        if el is None:
            return Code("", 0, what)
        return Code(self.text(el), el.sourceline or 0, what)

    def parse(self, gt: etree._Element) -> GraphType:
        gid = self.ident(gt)
        shared: list[Code] = []
        props = Struct()
        message_types: list[MessageType] = []
        device_types: list[DeviceType] = []
        saw_messages = saw_devices = False
        for c in children(gt):
            tag = local(c)
            if tag == "SharedCode":
                shared.append(self.code(c, "graph SharedCode"))
            elif tag == "Properties":
                props = self.struct(c, f"<Properties> of graph type {gid!r}")
            elif tag == "MessageTypes":
                saw_messages = True
                for m in children(c):
                    if local(m) != "MessageType":
                        raise self.refuse(m, "<MessageTypes>")
                    message_types.append(self.message_type(m, message_types))
            elif tag == "DeviceTypes":
                saw_devices = True
                for d in children(c):
                    if local(d) != "DeviceType":
                        raise self.refuse(d, "<DeviceTypes>")
                    dt = self.device_type(d, message_types)
                    if any(x.id == dt.id for x in device_types):
                        raise self.error(f"duplicate device type id {dt.id!r}", d)
                    device_types.append(dt)
            else:
                raise self.refuse(c, "<GraphType>")
        self.check_whole(gt, gid, device_types, saw_messages, saw_devices)
        logger.debug("v4 graph type %r: %d message types, %d device types", gid, len(message_types),
                     len(device_types))
        return GraphType(gid, 4, props, tuple(shared), tuple(message_types), tuple(device_types), self.file)

    def message_type(self, m: etree._Element, known: list[MessageType]) -> MessageType:
        mid = self.ident(m)
        if any(x.id == mid for x in known):
            raise self.error(f"duplicate message type id {mid!r}", m)
        payload: etree._Element | None = None
        for p in children(m):
            if local(p) != "Message" or payload is not None:
                raise self.refuse(p, f"message type {mid!r}")
            payload = p
        return MessageType(mid, self.struct(payload, f"<Message> of message type {mid!r}"), m.sourceline)

    def device_type(self, d: etree._Element, message_types: list[MessageType]) -> DeviceType:
        did = self.ident(d)
        known = {m.id for m in message_types}
        props = state = Struct()
        inputs: list[InputPin] = []
        outputs: list[OutputPin] = []
        rts: etree._Element | None = None
        shared: list[Code] = []
        on_init = on_idle = None
        for c in children(d):
            tag = local(c)
            if tag == "Properties":
                props = self.struct(c, f"<Properties> of device type {did!r}")
            elif tag == "State":
                state = self.struct(c, f"<State> of device type {did!r}")
            elif tag == "SharedCode":
                shared.append(self.code(c, "SharedCode"))
            elif tag in ("InputPin", "OutputPin"):
                name, mtype = self.pin_header(c, did, known, [*inputs, *outputs])
                if tag == "InputPin":
                    inputs.append(self.input_pin(c, did, name, mtype))
                else:
                    outputs.append(self.output_pin(c, did, name, mtype))
            elif tag == "ReadyToSend":
                rts = c
            elif tag == "OnInit":
                on_init = self.code(c, "OnInit")
            elif tag == "OnHardwareIdle":
                on_idle = self.code(c, "OnHardwareIdle")
            elif tag == "OnDeviceIdle":
                continue  # parsed but never executed by POETS simulators (graph-schema.md section 5)
            else:
                raise self.refuse(c, f"device type {did!r}")
        if len(outputs) > 32:
            raise self.error(f"device type {did!r} has {len(outputs)} output pins; at most 32 are allowed", d)
        return DeviceType(did, props, state, tuple(inputs), tuple(outputs), self.code(rts, "ReadyToSend"),
                          tuple(shared), on_init, on_idle, d.sourceline)

    def input_pin(self, c: etree._Element, did: str, name: str, mtype: str) -> InputPin:
        found: dict[str, etree._Element] = {}
        for h in children(c):
            tag = local(h)
            if tag not in ("OnReceive", "Properties", "State") or tag in found:
                raise self.refuse(h, f"input pin {name!r} of device type {did!r}")
            found[tag] = h
        what = f"of input pin {name!r} of device type {did!r}"
        return InputPin(name, mtype, self.code(found.get("OnReceive"), f"OnReceive of pin {name!r}"),
                        self.struct(found.get("Properties"), f"<Properties> {what}"),
                        self.struct(found.get("State"), f"<State> {what}"), c.sourceline)

    def output_pin(self, c: etree._Element, did: str, name: str, mtype: str) -> OutputPin:
        on_send: etree._Element | None = None
        for h in children(c):
            if local(h) != "OnSend" or on_send is not None:
                raise self.refuse(h, f"output pin {name!r} of device type {did!r}")
            on_send = h
        indexed = (c.get("indexed") or "false").strip().lower()
        if indexed not in ("true", "false", "1", "0"):
            raise self.error(f"output pin {name!r}: indexed={c.get('indexed')!r} is not true or false", c)
        return OutputPin(name, mtype, self.code(on_send, f"OnSend of pin {name!r}"), indexed in ("true", "1"),
                         c.sourceline)


def parse_graph_type(el: etree._Element, file: str) -> GraphType:
    """Parse a v4 ``<GraphType>`` element (the hook ``TypeParser.parse`` calls for version 4)."""
    return TypeParserV4(file).parse(el)


# ---- instances -----------------------------------------------------------------------------------

def json_body(values: dict[str, Any] | None) -> str:
    """A value dict as the JSON object body (no outer braces) v2/v3 ``<P>``/``<S>`` hold."""
    return json.dumps(values, separators=(",", ":"))[1:-1] if values else ""


class InstanceBuilderV4(_InstanceBuilder):
    """The loader's instance builder, fed v4 ``P``/``S`` attributes.

    Each attribute's brace initialiser is matched to its struct here and handed to the v3 code as
    the equivalent ``<P>``/``<S>`` child, so device, edge and value checks (and their messages)
    are the loader's own.  Unknown device types, devices and pins are left for it to report.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._int_names: dict[int, tuple[str, ...] | None] = {}  # by id() of a struct of the graph type

    def _values(self, text: str, spec: Struct, line: int | None, what: str) -> dict[str, Any] | None:
        """An attribute's values; flat integer initialisers of all-integer structs skip the parser."""
        names = self._int_names.get(id(spec), ())
        if names == ():
            names = self._int_names[id(spec)] = int_member_names(spec)
        if names is not None:
            ints = flat_ints(text)
            if ints is not None and len(ints) <= len(names):
                return dict(zip(names, ints))
        return parse_values(text, spec, self.file, line, what)

    def _adapt(self, el: etree._Element, specs: dict[str, tuple[str, Struct | None]], owner: str) -> None:
        """Replace attributes named in ``specs`` by child elements holding the same values."""
        ns = etree.QName(el).namespace
        value_tags = {child: attr for attr, (child, _) in specs.items()}
        for c in children(el):
            if local(c) in value_tags:
                raise self.error(f"<{local(c)}> element in <{local(el)}>: v4 gives {owner} values as a C "
                                 f'initialiser attribute, e.g. {value_tags[local(c)]}="{{1, 2}}"', c)
        for attr, (child, spec) in specs.items():
            text = el.get(attr)
            if text is None or spec is None:
                continue
            values = self._values(text, spec, el.sourceline, f"{attr} of {owner}")
            sub = etree.SubElement(el, f"{{{ns}}}{child}" if ns else child)
            sub.text = json_body(values)
            if el.sourceline is not None:  # value errors then point at the DevI/EdgeI line
                sub.sourceline = el.sourceline

    def device(self, el: etree._Element) -> None:
        if len(el) == 0 and el.get("P") is None and el.get("S") is None:
            return super().device(el)  # nothing to adapt (most devices of a large graph)
        dt = self.graph_type.device_type(el.get("type") or "") if self.graph_type is not None else None
        self._adapt(el, {"P": ("P", dt.properties if dt else None), "S": ("S", dt.state if dt else None)},
                    f"device {el.get('id')!r}")
        super().device(el)

    def edge(self, el: etree._Element) -> None:
        if len(el) == 0 and el.get("P") is None and el.get("S") is None:
            return super().edge(el)
        path = el.get("path") or ""
        pin = None
        m = EDGE_PATH.match(path)
        if m is not None and self.graph_type is not None:
            dst = self.inst.index.get(m.group(1))
            if dst is not None:
                pin = self.graph_type.device_types[self.inst.dev_type[dst]].input_pin(m.group(2))
        self._adapt(el, {"P": ("P", pin.properties if pin else None), "S": ("S", pin.state if pin else None)},
                    f"edge {path!r}")
        super().edge(el)

    def other(self, tag: str, el: etree._Element) -> None:
        if tag == "GraphInstance" and self.graph_type is not None:
            self._adapt(el, {"P": ("Properties", self.graph_type.properties)}, "the graph instance")
        super().other(tag, el)
