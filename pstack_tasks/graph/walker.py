"""One walk over a graph-schema ``<GraphType>`` for every version; the versions supply hooks.

v2, v3 and v4 share the skeleton (graph-schema.md section 9): graph properties and shared code,
message types, device types with pins and handlers.  They differ in how typed data is written
(v2/v3 member elements with JSON defaults, v4 C declarations), in which elements exist, and in
small rules (v2's ``__init__`` pin).  :class:`GraphTypeWalker` walks the skeleton once and checks
what is the same everywhere: identifiers, duplicates, pins, refusals, the 32-output limit; a
subclass per version (``v3.py``, ``v4.py``) says how to read a struct and which elements it has.

Graph types are small, so this works on a parsed element; instances can be huge and are
streamed by ``instance.py``.  Every error names file:line and the element.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import ClassVar

from lxml import etree

from pstack_tasks.exceptions import GraphError
from pstack_tasks.graph.app_file import open_app
from pstack_tasks.graph.elements import (
    BOOLEANS,
    CXX_KEYWORDS,
    IDENTIFIER,
    NAMESPACES,
    children,
    element_text,
    line_of,
    local,
    namespace,
    syntax_error,
)
from pstack_tasks.graph.model import (
    Code,
    DeviceType,
    FieldType,
    GraphType,
    InputPin,
    MessageType,
    OutputPin,
    Struct,
    SupervisorType,
)

logger = logging.getLogger(__name__)

SUPERVISORS = "supervisors are not supported yet"
#: elements no version supports, wherever they appear, with why
REFUSED = {"OnCompute": "<OnCompute> is not supported"}
#: handlers graph-schema defines but POETS simulators never execute (graph-schema.md section 5)
UNEXECUTED = frozenset({"OnDeviceIdle", "OnThreadIdle"})
#: device-type handlers kept as code, each under its own tag
HANDLERS = ("ReadyToSend", "OnInit", "OnHardwareIdle")
MAX_OUTPUT_PINS = 32


@dataclass
class DeviceParts:
    """A device type's pieces as the walk finds them."""

    id: str
    known_messages: set[str]
    structs: dict[str, Struct] = field(default_factory=dict)  # "Properties", "State"
    inputs: list[InputPin] = field(default_factory=list)
    outputs: list[OutputPin] = field(default_factory=list)
    shared: list[Code] = field(default_factory=list)
    handlers: dict[str, Code] = field(default_factory=dict)  # by tag (HANDLERS)
    supervisor_out: OutputPin | None = None  # v4: the last output pin
    supervisor_in: InputPin | None = None  # v4: the last input pin


class GraphTypeWalker:
    """Turns one ``<GraphType>`` element into a :class:`GraphType`; subclass per version."""

    version: ClassVar[int]
    #: elements this version does not have, with what to write instead (refused with file:line)
    dropped: ClassVar[Mapping[str, str]] = {}
    #: elements this version reads and ignores (they carry nothing we simulate)
    skipped: ClassVar[frozenset[str]] = frozenset()
    #: whether this version reads supervisors (v4: SupervisorType, device Supervisor pins)
    supervisors: ClassVar[bool] = False

    def __init__(self, file: str) -> None:
        self.file = file
        self.typedefs: list[tuple[str, FieldType]] = []
        self.supervisor: SupervisorType | None = None

    # ---- the version's hooks ------------------------------------------------------------------
    def struct(self, el: etree._Element | None, what: str) -> Struct:
        """The struct an element declares (``what`` names it in errors)."""
        raise NotImplementedError

    def type_definitions(self, el: etree._Element) -> None:
        """A ``<Types>`` section (its TypeDefs go to :attr:`typedefs`); versions without one refuse it."""
        raise self.refusal(el, "<GraphType>")

    def check_device_type(self, dt: DeviceType) -> None:
        """Rules of this version for a whole device type."""

    def supervisor_pin(self, c: etree._Element, dev: DeviceParts) -> None:
        """A device's ``SupervisorOutPin``/``SupervisorInPin`` (into ``dev``); versions without refuse it."""
        raise self.refusal(c, f"device type {dev.id!r}")

    def supervisor_type(self, d: etree._Element, message_types: list[MessageType]) -> SupervisorType:
        """A ``<SupervisorType>``; versions without supervisors refuse it."""
        raise self.refusal(d, "<DeviceTypes>")

    # ---- what every version checks the same way -----------------------------------------------
    def error(self, msg: str, el: etree._Element | None) -> GraphError:
        return GraphError(msg, self.file, line_of(el))

    def ident(self, el: etree._Element, attr: str = "id") -> str:
        value = el.get(attr)
        if value is None:
            raise self.error(f"<{local(el)}> has no {attr!r} attribute", el)
        if not IDENTIFIER.match(value):
            raise self.error(f"<{local(el)}> {attr}={value!r} is not a C identifier", el)
        if value in CXX_KEYWORDS:
            raise self.error(f"<{local(el)}> {attr}={value!r} is a C++ keyword: choose another name", el)
        return value

    def refusal(self, el: etree._Element, where: str) -> GraphError:
        """Why ``el`` cannot be read ``where`` it is: unsupported, not of this version, or unknown."""
        tag = local(el)
        named = f" {el.get('id')!r}" if el.get("id") is not None else ""
        if tag.startswith("Supervisor"):
            return self.error(f"<{tag}>{named} in {where}: v{self.version} {SUPERVISORS}", el)
        if tag in self.dropped:
            return self.error(f"<{tag}> in {where}: {self.dropped[tag]}", el)
        if tag in REFUSED:
            return self.error(f"<{tag}> in {where}: {REFUSED[tag]}", el)
        return self.error(f"unexpected <{tag}> in {where}", el)

    def elements(self, el: etree._Element, where: str) -> Iterator[etree._Element]:
        """Children to read: skipped ones left out, unsupported and dropped ones refused."""
        for c in children(el):
            tag = local(c)
            if tag in self.skipped:
                continue
            refused_supervisor = tag.startswith("Supervisor") and not self.supervisors
            if tag in self.dropped or tag in REFUSED or refused_supervisor:
                raise self.refusal(c, where)
            yield c

    def code(self, el: etree._Element | None, what: str) -> Code:
        if el is None:
            return Code("", 0, what)
        return Code(element_text(el, self.file), line_of(el) or 0, what)

    # ---- the walk -----------------------------------------------------------------------------
    def parse(self, gt: etree._Element) -> GraphType:
        gid = self.ident(gt)
        shared: list[Code] = []
        props = Struct()
        message_types: list[MessageType] = []
        device_types: list[DeviceType] = []
        sections: set[str] = set()
        for c in self.elements(gt, "<GraphType>"):
            tag = local(c)
            sections.add(tag)
            if tag == "SharedCode":
                shared.append(self.code(c, "graph SharedCode"))
            elif tag == "Types":
                self.type_definitions(c)
            elif tag == "Properties":
                props = self.struct(c, f"<Properties> of graph type {gid!r}")
            elif tag == "MessageTypes":
                for m in self.elements(c, "<MessageTypes>"):
                    message_types.append(self.message_type(m, message_types))
            elif tag == "DeviceTypes":
                self.device_types(c, message_types, device_types)
            else:
                raise self.refusal(c, "<GraphType>")
        self.check_whole(gt, gid, device_types, sections)
        logger.debug("v%d graph type %r: %d message types, %d device types", self.version, gid,
                     len(message_types), len(device_types))
        return GraphType(gid, self.version, props, tuple(shared), tuple(message_types), tuple(device_types),
                         self.file, tuple(self.typedefs), self.supervisor)

    def message_type(self, m: etree._Element, known: list[MessageType]) -> MessageType:
        if local(m) != "MessageType":
            raise self.refusal(m, "<MessageTypes>")
        mid = self.ident(m)
        if any(x.id == mid for x in known):
            raise self.error(f"duplicate message type id {mid!r}", m)
        payload = self.parts(m, ("Message",), f"message type {mid!r}").get("Message")
        return MessageType(mid, self.struct(payload, f"<Message> of message type {mid!r}"), line_of(m))

    def device_types(self, c: etree._Element, message_types: list[MessageType], into: list[DeviceType]) -> None:
        for d in self.elements(c, "<DeviceTypes>"):
            if local(d) == "SupervisorType":
                if self.supervisor is not None:
                    raise self.error("a graph type has at most one <SupervisorType>", d)
                self.supervisor = self.supervisor_type(d, message_types)
                continue
            if local(d) not in ("DeviceType", "ExternalType"):
                raise self.refusal(d, "<DeviceTypes>")
            dt = self.device_type(d, message_types)
            if local(d) == "ExternalType":  # pins and properties only: its messages go to a Python engine
                dt = replace(dt, external=True)
            if any(x.id == dt.id for x in into):
                raise self.error(f"duplicate device type id {dt.id!r}", d)
            into.append(dt)

    def device_type(self, d: etree._Element, message_types: list[MessageType]) -> DeviceType:
        dev = DeviceParts(self.ident(d), {m.id for m in message_types})
        for c in self.elements(d, f"device type {dev.id!r}"):
            self.device_child(c, dev)
        if dev.supervisor_out is not None:  # graph-schema.md s7: the supervisor pins come last
            dev.outputs.append(dev.supervisor_out)
        if dev.supervisor_in is not None:
            dev.inputs.append(dev.supervisor_in)
        if len(dev.outputs) > MAX_OUTPUT_PINS:
            raise self.error(f"device type {dev.id!r} has {len(dev.outputs)} output pins; at most "
                             f"{MAX_OUTPUT_PINS} are allowed", d)
        dt = DeviceType(dev.id, dev.structs.get("Properties", Struct()), dev.structs.get("State", Struct()),
                        tuple(dev.inputs), tuple(dev.outputs),
                        dev.handlers.get("ReadyToSend") or self.code(None, "ReadyToSend"), tuple(dev.shared),
                        dev.handlers.get("OnInit"), dev.handlers.get("OnHardwareIdle"), line_of(d))
        self.check_device_type(dt)
        return dt

    def device_child(self, c: etree._Element, dev: DeviceParts) -> None:
        tag = local(c)
        if tag in ("Properties", "State"):
            dev.structs[tag] = self.struct(c, f"<{tag}> of device type {dev.id!r}")
        elif tag in ("SharedCode", "DeviceSharedCode"):  # v4 drops DeviceSharedCode (its `dropped`)
            dev.shared.append(self.code(c, "SharedCode"))
        elif tag == "InputPin":
            dev.inputs.append(self.input_pin(c, dev))
        elif tag == "OutputPin":
            dev.outputs.append(self.output_pin(c, dev))
        elif tag in HANDLERS:
            dev.handlers[tag] = self.code(c, tag)
        elif tag in ("SupervisorOutPin", "SupervisorInPin"):
            self.supervisor_pin(c, dev)
        elif tag not in UNEXECUTED:
            raise self.refusal(c, f"device type {dev.id!r}")

    def parts(self, el: etree._Element, allowed: tuple[str, ...], where: str) -> dict[str, etree._Element]:
        """The children of ``el`` by tag: each one of ``allowed``, at most once."""
        found: dict[str, etree._Element] = {}
        for c in self.elements(el, where):
            tag = local(c)
            if tag not in allowed or tag in found:
                raise self.refusal(c, where)
            found[tag] = c
        return found

    def pin_header(self, c: etree._Element, dev: DeviceParts) -> tuple[str, str]:
        """A pin's name and message type, checked: it names a known type, and no other pin's name."""
        name = self.ident(c, "name")
        mtype = c.get("messageTypeId")
        if mtype is None:
            raise self.error(f"pin {name!r} of device type {dev.id!r} has no messageTypeId", c)
        if mtype not in dev.known_messages:
            raise self.error(f"pin {name!r} of device type {dev.id!r} uses unknown message type {mtype!r}", c)
        if any(p.name == name for p in dev.inputs) or any(p.name == name for p in dev.outputs):
            raise self.error(f"duplicate pin name {name!r} in device type {dev.id!r}", c)
        return name, mtype

    def input_pin(self, c: etree._Element, dev: DeviceParts) -> InputPin:
        name, mtype = self.pin_header(c, dev)
        what = f"of input pin {name!r} of device type {dev.id!r}"
        found = self.parts(c, ("OnReceive", "Properties", "State"), f"input pin {name!r} of device type {dev.id!r}")
        return InputPin(name, mtype, self.code(found.get("OnReceive"), f"OnReceive of pin {name!r}"),
                        self.struct(found.get("Properties"), f"<Properties> {what}"),
                        self.struct(found.get("State"), f"<State> {what}"), line_of(c))

    def output_pin(self, c: etree._Element, dev: DeviceParts) -> OutputPin:
        name, mtype = self.pin_header(c, dev)
        found = self.parts(c, ("OnSend",), f"output pin {name!r} of device type {dev.id!r}")
        raw = c.get("indexed")
        indexed = BOOLEANS.get(raw.strip()) if raw is not None else False
        if indexed is None:
            raise self.error(f"output pin {name!r} of device type {dev.id!r}: indexed={raw!r} is not a boolean "
                             "(true, false, 1 or 0)", c)
        return OutputPin(name, mtype, self.code(found.get("OnSend"), f"OnSend of pin {name!r}"), indexed, line_of(c))

    def check_whole(self, gt: etree._Element, gid: str, device_types: list[DeviceType], sections: set[str]) -> None:
        """The graph type as a whole: both sections present, no type id clashing with the graph's."""
        for d in device_types:
            if d.id == gid:
                raise GraphError(f"device type id {gid!r} is also the graph type id; the generated type names "
                                 f"({gid}_properties_t) would clash: rename one", self.file, d.line)
        for section in ("MessageTypes", "DeviceTypes"):
            if section not in sections:
                raise self.error(f"graph type {gid!r} has no <{section}>", gt)


def graph_type_in_file(path: str, gid: str, walker: type[GraphTypeWalker], referrer: str,
                       line: int | None) -> GraphType:
    """The graph type ``gid`` from another file of the same version (a ``GraphTypeReference src``)."""
    if not os.path.isfile(path):
        raise GraphError(f"<GraphTypeReference> src: no such file {path!r}", referrer, line)
    try:
        with open_app(path) as src:
            try:
                root = etree.parse(src, etree.XMLParser(huge_tree=True, remove_comments=True)).getroot()
            except etree.XMLSyntaxError as e:
                raise syntax_error(e, path, src) from None
    except OSError as e:
        raise GraphError(f"<GraphTypeReference> src: cannot read {path!r}: {e.strerror}", referrer, line) from None
    ns = namespace(root)
    if NAMESPACES.get(ns or "") != walker.version:
        raise GraphError(f"<GraphTypeReference> src {path!r} is not a graph-schema v{walker.version} file like "
                         "the one that refers to it", referrer, line)
    for gt in root.iter("{%s}GraphType" % ns):
        if gt.get("id") == gid:
            return walker(path).parse(gt)
    raise GraphError(f"<GraphTypeReference>: {path!r} has no <GraphType id={gid!r}>", referrer, line)
