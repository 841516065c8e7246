"""Parse a graph-schema ``<GraphType>`` element into the model.

Graph types are small, so this works on a parsed element; instances can be
huge and are streamed by ``loader.py``.  Every error names file:line and the
element.  The namespace decides the dialect: v2 is pstack's (an ``__init__``
pin, ``rts``), v3 adds OnInit/OnHardwareIdle and ``<Default>`` values.
"""
from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from lxml import etree

from pstack_tasks.exceptions import GraphError
from pstack_tasks.graph.model import (
    SCALAR_TYPES,
    Array,
    Code,
    DeviceType,
    Field,
    FieldType,
    GraphType,
    InputPin,
    MessageType,
    OutputPin,
    Scalar,
    Struct,
    Tuple,
)
from pstack_tasks.graph.values import ValueError_, check_value

NAMESPACES = {
    "https://poets-project.org/schemas/virtual-graph-schema-v2": 2,
    "https://poets-project.org/schemas/virtual-graph-schema-v3": 3,
    "https://poets-project.org/schemas/virtual-graph-schema-v4": 4,
}
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: elements that may appear and carry nothing we simulate
IGNORED = {"Documentation", "MetaData", "HashDigest"}


def local(el: etree._Element) -> str:
    """The element's tag without its namespace."""
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def children(el: etree._Element) -> list[etree._Element]:
    """Element children, skipping comments and processing instructions."""
    return [c for c in el if isinstance(c.tag, str)]


def parse_json_body(text: str | None, file: str, line: int | None, what: str) -> dict[str, Any]:
    """Parse a graph-schema value body: a JSON object without its outer braces."""
    body = (text or "").strip()
    if not body:
        return {}
    if not body.startswith("{"):
        body = "{" + body + "}"
    try:
        value = json.loads(body)
    except json.JSONDecodeError as e:
        raise GraphError(f"malformed {what}: {e.msg} (column {e.colno}) in {text.strip()[:60]!r}",
                         file, line) from None
    if not isinstance(value, dict):
        raise GraphError(f"malformed {what}: expected a list of \"name\": value pairs", file, line)
    return value


class GraphTypeChecks:
    """What every version's graph type parser checks the same way, with errors naming file:line.

    The v2/v3 parser (:class:`TypeParser`) and the v4 one (``schema_v4.TypeParserV4``) differ in
    how typed data and handlers are written, not in these rules.
    """

    file: str

    def error(self, msg: str, el: etree._Element | None) -> GraphError:
        return GraphError(msg, self.file, el.sourceline if el is not None else None)

    def ident(self, el: etree._Element, attr: str = "id") -> str:
        value = el.get(attr)
        if value is None:
            raise self.error(f"<{local(el)}> has no {attr!r} attribute", el)
        if not IDENTIFIER.match(value):
            raise self.error(f"<{local(el)}> {attr}={value!r} is not a C identifier", el)
        return value

    def pin_header(self, c: etree._Element, did: str, known: set[str], pins: list[Any]) -> tuple[str, str]:
        """A pin's name and message type, checked: it names a known type, and no other pin's name."""
        name = self.ident(c, "name")
        mtype = c.get("messageTypeId")
        if mtype is None:
            raise self.error(f"pin {name!r} of device type {did!r} has no messageTypeId", c)
        if mtype not in known:
            raise self.error(f"pin {name!r} of device type {did!r} uses unknown message type {mtype!r}", c)
        if any(p.name == name for p in pins):
            raise self.error(f"duplicate pin name {name!r} in device type {did!r}", c)
        return name, mtype

    def check_whole(self, gt: etree._Element, gid: str, device_types: list[DeviceType], saw_messages: bool,
                    saw_devices: bool) -> None:
        """The graph type as a whole: both sections present, no type id clashing with the graph's."""
        for d in device_types:
            if d.id == gid:
                raise GraphError(f"device type id {gid!r} is also the graph type id; the generated type names "
                                 f"({gid}_properties_t) would clash: rename one", self.file, d.line)
        if not saw_messages:
            raise self.error(f"graph type {gid!r} has no <MessageTypes>", gt)
        if not saw_devices:
            raise self.error(f"graph type {gid!r} has no <DeviceTypes>", gt)


class TypeParser(GraphTypeChecks):
    """Turns one v2/v3 ``<GraphType>`` element into a :class:`GraphType`."""

    def __init__(self, file: str, version: int) -> None:
        self.file = file
        self.version = version
        self.typedefs: dict[str, FieldType] = {}

    # ---- typed data ---------------------------------------------------------------------------
    def member(self, el: etree._Element) -> Field:
        kind = local(el)
        name = self.ident(el, "name")
        if kind == "Scalar":
            ftype: FieldType = self.scalar_type(el)
        elif kind == "Array":
            length_s = el.get("length")
            try:
                length = int(length_s or "")
                if length <= 0:
                    raise ValueError
            except ValueError:
                raise self.error(f"array {name!r} needs a positive integer length, got {length_s!r}", el) from None
            inner = [c for c in children(el) if local(c) not in IGNORED and local(c) != "Default"]
            if el.get("type") is not None:
                element: FieldType = self.scalar_type(el)
            elif len(inner) == 1:
                element = self.member(inner[0]).type
            else:
                raise self.error(f"array {name!r} needs a type attribute or exactly one member element", el)
            ftype = Array(element, length, self.default(el, name))
        elif kind == "Tuple":
            members = self.members(el)
            ftype = Tuple(members, self.default(el, name))
        elif kind == "Union":
            raise self.error(f"union {name!r}: unions are not supported (no POETS tool implements them)", el)
        else:
            raise self.error(f"unexpected <{kind}> where a Scalar, Array or Tuple member was expected", el)
        if ftype.default is not None:
            try:
                check_value(ftype, ftype.default, name)
            except ValueError_ as e:
                raise self.error(f"bad default: {e}", el) from None
        return Field(name, ftype, el.sourceline)

    def scalar_type(self, el: etree._Element) -> FieldType:
        ctype = el.get("type")
        name = el.get("name")
        if ctype is None:
            raise self.error(f"member {name!r} has no type attribute", el)
        if ctype in self.typedefs:
            named = self.typedefs[ctype]
            dflt = self.default(el, name) if local(el) != "Array" else None
            return named if dflt is None else dataclasses.replace(named, default=dflt)
        if ctype not in SCALAR_TYPES or ctype == "bool":
            raise self.error(f"member {name!r} has unsupported type {ctype!r} (supported: "
                             + ", ".join(t for t in SCALAR_TYPES if t != "bool") + ")", el)
        if local(el) == "Array":
            return Scalar(ctype)
        return Scalar(ctype, self.default(el, name))

    def default(self, el: etree._Element, name: str | None) -> Any:
        """A member's default: the ``default`` attribute (JSON scalar) or a v3 ``<Default>`` child."""
        raw = el.get("default")
        dflt = [c for c in children(el) if local(c) == "Default"]
        if raw is None and not dflt:
            return None
        text = raw if raw is not None else (dflt[0].text or "")
        text = text.strip()
        if local(el) == "Array" and el.get("type") == "char" and raw is not None:
            return raw
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            pass
        try:
            return json.loads("{" + text + "}")
        except json.JSONDecodeError:
            raise self.error(f"malformed default for member {name!r}: {text[:60]!r}", el) from None

    def members(self, el: etree._Element | None) -> tuple[Field, ...]:
        if el is None:
            return ()
        fields = [self.member(c) for c in children(el) if local(c) not in IGNORED | {"Default"}]
        seen: set[str] = set()
        for f in fields:
            if f.name in seen:
                raise GraphError(f"duplicate member name {f.name!r}", self.file, f.line)
            seen.add(f.name)
        return tuple(fields)

    def struct(self, el: etree._Element | None) -> Struct:
        return Struct(self.members(el))

    # ---- code ---------------------------------------------------------------------------------
    def code(self, el: etree._Element | None, what: str) -> Code:
        if el is None:
            return Code("", 0, what)
        return Code(el.text or "", el.sourceline or 0, what)

    # ---- graph type ---------------------------------------------------------------------------
    def parse(self, gt: etree._Element) -> GraphType:
        if self.version == 4:  # typed data as C declarations: schema_v4.py
            from pstack_tasks.graph.v4 import parse_graph_type
            return parse_graph_type(gt, self.file)
        gid = self.ident(gt)
        shared: list[Code] = []
        props = Struct()
        message_types: list[MessageType] = []
        device_types: list[DeviceType] = []
        saw_messages = saw_devices = False
        typedefs: list[tuple[str, FieldType]] = []
        for c in children(gt):
            tag = local(c)
            if tag in IGNORED:
                continue
            if tag == "SharedCode":
                shared.append(self.code(c, "graph SharedCode"))
            elif tag == "Types":
                for td in children(c):
                    if local(td) != "TypeDef":
                        continue
                    tid = self.ident(td)
                    mems = [m for m in children(td) if local(m) not in IGNORED]
                    if self.version == 2 and len(mems) != 1:
                        body: FieldType = Tuple(self.members(td))
                    elif len(mems) == 1:
                        body = self.member(mems[0]).type
                    else:
                        raise self.error(f"TypeDef {tid!r} must hold exactly one member", td)
                    if tid in self.typedefs:
                        raise self.error(f"duplicate TypeDef id {tid!r}", td)
                    typedefs.append((tid, body))
                    # members declared with this type are written with its name in the generated C
                    self.typedefs[tid] = dataclasses.replace(body, cname=tid)
            elif tag == "Properties":
                props = self.struct(c)
            elif tag == "MessageTypes":
                saw_messages = True
                for m in children(c):
                    if local(m) in IGNORED:
                        continue
                    if local(m) != "MessageType":
                        raise self.error(f"unexpected <{local(m)}> in <MessageTypes>", m)
                    mid = self.ident(m)
                    if any(x.id == mid for x in message_types):
                        raise self.error(f"duplicate message type id {mid!r}", m)
                    payload = [p for p in children(m) if local(p) == "Message"]
                    message_types.append(MessageType(mid, self.struct(payload[0] if payload else None),
                                                     m.sourceline))
            elif tag == "DeviceTypes":
                saw_devices = True
                for d in children(c):
                    kind = local(d)
                    if kind in IGNORED:
                        continue
                    if kind == "DeviceType":
                        dt = self.device_type(d, message_types)
                        if any(x.id == dt.id for x in device_types):
                            raise self.error(f"duplicate device type id {dt.id!r}", d)
                        device_types.append(dt)
                    elif kind == "ExternalType":
                        raise self.error(f"<ExternalType> {d.get('id')!r}: external devices (ExternalType/ExtI) "
                                         "are not supported yet", d)
                    elif kind in ("SupervisorType", "SupervisorDeviceType"):
                        raise self.error(f"<{kind}> {d.get('id')!r}: supervisors are not supported yet", d)
                    else:
                        raise self.error(f"unexpected <{kind}> in <DeviceTypes>", d)
            else:
                raise self.error(f"unexpected <{tag}> in <GraphType>", c)
        self.check_whole(gt, gid, device_types, saw_messages, saw_devices)
        return GraphType(gid, self.version, props, tuple(shared), tuple(message_types), tuple(device_types),
                         self.file, tuple(typedefs))

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
            if tag in IGNORED:
                continue
            if tag == "Properties":
                props = self.struct(c)
            elif tag == "State":
                state = self.struct(c)
            elif tag in ("SharedCode", "DeviceSharedCode"):
                shared.append(self.code(c, "SharedCode"))
            elif tag in ("InputPin", "OutputPin"):
                name, mtype = self.pin_header(c, did, known, [*inputs, *outputs])
                handler_tag = "OnReceive" if tag == "InputPin" else "OnSend"
                hs = [h for h in children(c) if local(h) == handler_tag]
                what = f"{handler_tag} of pin {name!r}"
                if tag == "InputPin":
                    ep = [h for h in children(c) if local(h) == "Properties"]
                    es = [h for h in children(c) if local(h) == "State"]
                    inputs.append(InputPin(name, mtype, self.code(hs[0] if hs else None, what),
                                           self.struct(ep[0] if ep else None), self.struct(es[0] if es else None),
                                           c.sourceline))
                else:
                    indexed = (c.get("indexed") or "false").lower() == "true"
                    outputs.append(OutputPin(name, mtype, self.code(hs[0] if hs else None, what), indexed,
                                             c.sourceline))
            elif tag == "ReadyToSend":
                rts = c
            elif tag in ("OnInit", "OnHardwareIdle") and self.version == 2:
                raise self.error(f"device type {did!r}: <{tag}> is graph-schema v3; in a v2 file initialise "
                                 "devices through an input pin named __init__", c)
            elif tag == "OnInit":
                on_init = self.code(c, "OnInit")
            elif tag == "OnHardwareIdle":
                on_idle = self.code(c, "OnHardwareIdle")
            elif tag in ("OnDeviceIdle", "OnThreadIdle"):
                continue  # parsed but never executed by POETS simulators (graph-schema.md section 5)
            elif tag == "OnCompute":
                raise self.error(f"device type {did!r}: <OnCompute> is not supported", c)
            else:
                raise self.error(f"unexpected <{tag}> in device type {did!r}", c)
        if len(outputs) > 32:
            raise self.error(f"device type {did!r} has {len(outputs)} output pins; at most 32 are allowed", d)
        if self.version == 2:
            init = [p for p in inputs if p.name == "__init__"]
            if init and init[0].message_type != "__init__":
                raise GraphError(f"device type {did!r}: the __init__ pin must carry message type '__init__'",
                                 self.file, init[0].line)
        return DeviceType(did, props, state, tuple(inputs), tuple(outputs),
                          self.code(rts, "ReadyToSend"), tuple(shared), on_init, on_idle, d.sourceline)
