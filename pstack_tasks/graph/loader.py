"""Stream a graph-schema file into a graph type plus a compact instance.

Instances can hold millions of devices, so the file is read once with
``lxml.etree.iterparse`` and each ``DevI``/``EdgeI`` is packed into flat
arrays and freed at once: memory grows with the data, not with XML objects.
The instance is written to a binary file the engine loads at start (format in
docs/engine-protocol.md); it is never compiled into the engine.
"""
from __future__ import annotations

import io
import os
import re
import struct
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from lxml import etree

from pstack_tasks.exceptions import GraphError
from pstack_tasks.graph.indexed import number_indexed_edges
from pstack_tasks.graph.model import GraphType, OutputPin
from pstack_tasks.graph.type_parser import NAMESPACES, TypeParser, children, local, parse_json_body
from pstack_tasks.graph.values import Packer, ValueError_

INSTANCE_MAGIC = b"PSTI"
INSTANCE_VERSION = 2
NO_SEND_INDEX = 0xFFFFFFFF
EDGE_WORDS = 6
EDGE_PATH = re.compile(r"^(.*):([A-Za-z_]\w*)-(.*):([A-Za-z_]\w*)$")


@dataclass
class Instance:
    """Devices and edges of one graph instance, packed for the engine."""

    id: str = ""
    names: list[str] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)
    dev_type: array = field(default_factory=lambda: array("H"))
    props: list[bytearray] = field(default_factory=list)   # per device type, in device order
    state: list[bytearray] = field(default_factory=list)   # initial state, per device type
    counts: list[int] = field(default_factory=list)        # devices per type
    edges: array = field(default_factory=lambda: array("I"))  # src, srcpin, dst, dstpin, eidx, sendIndex
    edge_props: dict[tuple[int, int], bytearray] = field(default_factory=dict)
    edge_state: dict[tuple[int, int], bytearray] = field(default_factory=dict)
    edge_counts: dict[tuple[int, int], int] = field(default_factory=dict)
    graph_properties: bytes = b""

    @property
    def device_count(self) -> int:
        return len(self.names)

    @property
    def edge_count(self) -> int:
        return len(self.edges) // EDGE_WORDS


@dataclass
class Application:
    """A parsed application: the graph type (compiled) and its instance (loaded at run time)."""

    graph_type: GraphType
    instance: Instance
    file: str

    def worth_keeping(self) -> bool:
        """Small enough to keep parsed in a process for its next run (a big instance is cheap to
        read again beside its run time, and expensive to keep in every worker process)."""
        return self.instance.device_count + self.instance.edge_count <= KEEP_PARSED_MAX_SIZE


#: devices + edges of the largest application a process keeps parsed between runs
KEEP_PARSED_MAX_SIZE = 100_000


def _source(xml_or_path: str | bytes | os.PathLike[str]) -> tuple[Any, str]:
    """An iterparse source and a name for messages, from XML text or a path."""
    if isinstance(xml_or_path, bytes):
        return io.BytesIO(xml_or_path), "<xml>"
    text = os.fspath(xml_or_path)
    if text.lstrip().startswith("<"):
        return io.BytesIO(text.encode()), "<xml>"
    if not os.path.exists(text):
        raise GraphError("no such file", text)
    try:
        return open(text, "rb"), text  # opened here so that load() always closes it
    except OSError as e:
        raise GraphError(f"cannot read the file: {e.strerror}", text) from None


def _rewind(src: Any) -> Any:
    if hasattr(src, "seek"):
        src.seek(0)
    return src


def _syntax_error(e: etree.XMLSyntaxError, name: str) -> GraphError:
    line = e.position[0] if e.position else None
    msg = re.sub(r", line \d+, column \d+$", "", str(e.msg or e))
    return GraphError(f"malformed XML: {msg}", name, line)


def detect_version(src: Any, name: str) -> tuple[str, int]:
    """The root namespace and schema version (2, 3 or 4) of a file."""
    try:
        for _, el in etree.iterparse(src, events=("start",), huge_tree=True):
            ns = etree.QName(el).namespace
            if etree.QName(el).localname != "Graphs":
                raise GraphError(f"root element is <{etree.QName(el).localname}>, expected <Graphs>", name,
                                 el.sourceline)
            if ns is None:
                raise GraphError("<Graphs> has no xmlns namespace; expected one of: " + ", ".join(NAMESPACES),
                                 name, el.sourceline)
            if ns not in NAMESPACES:
                raise GraphError(f"unknown namespace {ns!r}; expected one of: " + ", ".join(NAMESPACES),
                                 name, el.sourceline)
            return ns, NAMESPACES[ns]
    except etree.XMLSyntaxError as e:
        raise _syntax_error(e, name) from None
    raise GraphError("empty document", name)


def load(xml_or_path: str | bytes | os.PathLike[str]) -> Application:
    """Parse an application file (or XML text) into its graph type and packed instance."""
    src, name = _source(xml_or_path)
    with src:
        ns, version = detect_version(src, name)
        q = "{%s}" % ns
        tags = [q + t for t in ("GraphType", "DevI", "ExtI", "EdgeI", "GraphInstance", "GraphTypeReference")]
        builder = _InstanceBuilder(name, version)
        if version == 4:  # C initialiser attributes (schema_v4.py), imported here as it builds on this module
            from pstack_tasks.graph.v4 import InstanceBuilderV4
            builder = InstanceBuilderV4(name, version)
        try:
            for _, el in etree.iterparse(_rewind(src), events=("end",), tag=tags, huge_tree=True,
                                         remove_comments=True):
                tag = el.tag[len(q):]
                if tag == "DevI":
                    builder.device(el)
                elif tag == "EdgeI":
                    builder.edge(el)
                else:
                    builder.other(tag, el)
                    continue
                el.clear()
                parent = el.getparent()
                while el.getprevious() is not None:
                    del parent[0]
        except etree.XMLSyntaxError as e:
            raise _syntax_error(e, name) from None
    return builder.finish()


def load_graph_type(path: str, gid: str, version: int, referrer: str, line: int | None) -> GraphType:
    """The graph type ``gid`` from another file (a ``GraphTypeReference`` with ``src``)."""
    if not os.path.isfile(path):
        raise GraphError(f"<GraphTypeReference> src: no such file {path!r}", referrer, line)
    try:
        root = etree.parse(path, etree.XMLParser(huge_tree=True, remove_comments=True)).getroot()
    except etree.XMLSyntaxError as e:
        raise _syntax_error(e, path) from None
    ns = etree.QName(root).namespace
    if NAMESPACES.get(ns or "") != version:
        raise GraphError(f"<GraphTypeReference> src {path!r} is not a graph-schema v{version} file like the one "
                         "that refers to it", referrer, line)
    for gt in root.iter("{%s}GraphType" % ns):
        if gt.get("id") == gid:
            return TypeParser(path, version).parse(gt)
    raise GraphError(f"<GraphTypeReference>: {path!r} has no <GraphType id={gid!r}>", referrer, line)


class _InstanceBuilder:
    """Collects the graph type and packs devices and edges as iterparse yields them."""

    def __init__(self, file: str, version: int) -> None:
        self.file = file
        self.version = version
        self.graph_type: GraphType | None = None
        self.inst = Instance()
        self.seen_instance = False
        # indexed (src, pin) -> [(sendIndex or None, edge number, line)]
        self.send_indices: dict[tuple[int, int], list[tuple[int | None, int, int]]] = {}

    def error(self, msg: str, el: etree._Element) -> GraphError:
        return GraphError(msg, self.file, el.sourceline)

    def other(self, tag: str, el: etree._Element) -> None:
        if tag == "GraphType":
            if self.graph_type is not None:
                raise self.error("more than one <GraphType> in the file", el)
            self.graph_type = TypeParser(self.file, self.version).parse(el)
            self._prepare(self.graph_type)
        elif tag == "GraphTypeReference":
            self._reference(el)
        elif tag == "ExtI":
            raise self.error(f"<ExtI> {el.get('id')!r}: external devices are not supported yet", el)
        elif tag == "GraphInstance":
            if self.seen_instance:
                raise self.error("more than one <GraphInstance> in the file", el)
            self.seen_instance = True
            gt = self._require_type(el)
            tid = el.get("graphTypeId")
            if tid != gt.id:
                raise self.error(f"graph instance refers to graph type {tid!r}, but the file defines {gt.id!r}", el)
            self.inst.id = el.get("id") or ""
            for c in children(el):
                if local(c) == "Properties":
                    values = parse_json_body(c.text, self.file, c.sourceline, "graph <Properties>")
                    self.inst.graph_properties = self._pack(self.gprops, values, c, "graph properties")

    def _reference(self, el: etree._Element) -> None:
        """``<GraphTypeReference id src?>``: the graph type comes from file ``src`` (relative to this
        file), or, without ``src``, from a ``<GraphType>`` of this file."""
        rid = el.get("id")
        if not rid:
            raise self.error("<GraphTypeReference> has no 'id' attribute", el)
        src = el.get("src")
        if src is None:
            if self.graph_type is not None and self.graph_type.id != rid:
                raise self.error(f"<GraphTypeReference> names graph type {rid!r}, but the file defines "
                                 f"{self.graph_type.id!r}", el)
            return  # the <GraphInstance> check below matches it against the type found in the file
        if self.graph_type is not None:
            raise self.error("the file has both a <GraphType> and a <GraphTypeReference> with src", el)
        base = os.path.dirname(self.file) if self.file != "<xml>" else os.getcwd()
        self.graph_type = load_graph_type(os.path.join(base, src), rid, self.version, self.file, el.sourceline)
        self._prepare(self.graph_type)

    def _require_type(self, el: etree._Element) -> GraphType:
        if self.graph_type is None:
            raise self.error("instance data before any <GraphType>", el)
        return self.graph_type

    def _prepare(self, gt: GraphType) -> None:
        self.q_p = "{%s}P" % next(ns for ns, v in NAMESPACES.items() if v == self.version)
        self.type_index = {d.id: i for i, d in enumerate(gt.device_types)}
        self.pp = [Packer(d.properties) for d in gt.device_types]
        self.sp = [Packer(d.state) for d in gt.device_types]
        self.inputs = [{p.name: (i, p) for i, p in enumerate(d.input_pins)} for d in gt.device_types]
        self.outputs = [{p.name: (i, p) for i, p in enumerate(d.output_pins)} for d in gt.device_types]
        self.edge_packers = {(t, i): (Packer(p.properties), Packer(p.state))
                             for t, d in enumerate(gt.device_types) for i, p in enumerate(d.input_pins)}
        self.gprops = Packer(gt.properties)
        self.inst.graph_properties = self.gprops.default_bytes
        self.inst.props = [bytearray() for _ in gt.device_types]
        self.inst.state = [bytearray() for _ in gt.device_types]
        self.inst.counts = [0] * len(gt.device_types)

    def _pack(self, packer: Packer, values: dict[str, Any] | None, el: etree._Element, what: str) -> bytes:
        try:
            return packer.pack(values)
        except ValueError_ as e:
            raise self.error(f"{what}: {e}", el) from None

    def device(self, el: etree._Element) -> None:
        self._require_type(el)
        inst = self.inst
        did = el.get("id")
        dtype = el.get("type")
        if not did:
            raise self.error("<DevI> without an id", el)
        if did in inst.index:
            raise self.error(f"duplicate device id {did!r}", el)
        t = self.type_index.get(dtype)  # type: ignore[arg-type]
        if t is None:
            raise self.error(f"device {did!r} has unknown device type {dtype!r} (known: "
                             + ", ".join(self.type_index) + ")", el)
        p_values = s_values = None
        p_el = s_el = el  # value errors point at the <P>/<S> element
        for c in el:
            tag = c.tag
            if tag == self.q_p:
                p_values, p_el = parse_json_body(c.text, self.file, c.sourceline, f"<P> of device {did!r}"), c
                continue
            tag = tag.rpartition("}")[2] if isinstance(tag, str) else ""
            if tag == "S":
                s_values, s_el = parse_json_body(c.text, self.file, c.sourceline, f"<S> of device {did!r}"), c
        inst.index[did] = len(inst.names)
        inst.names.append(did)
        inst.dev_type.append(t)
        inst.props[t] += self._pack(self.pp[t], p_values, p_el, f"properties of device {did!r}")
        inst.state[t] += self._pack(self.sp[t], s_values, s_el, f"state of device {did!r}")
        inst.counts[t] += 1

    def edge(self, el: etree._Element) -> None:
        gt = self._require_type(el)
        inst = self.inst
        path = el.get("path") or ""
        m = EDGE_PATH.match(path)
        if not m:
            raise self.error(f"malformed edge path {path!r}; expected 'dstDevice:dstPin-srcDevice:srcPin'", el)
        dst_name, dst_pin, src_name, src_pin = m.groups()
        dst = inst.index.get(dst_name)
        src = inst.index.get(src_name)
        if dst is None:
            raise self.error(f"edge {path!r}: unknown destination device {dst_name!r}", el)
        if src is None:
            raise self.error(f"edge {path!r}: unknown source device {src_name!r}", el)
        dt, st = inst.dev_type[dst], inst.dev_type[src]
        ip = self.inputs[dt].get(dst_pin)
        op = self.outputs[st].get(src_pin)
        if ip is None:
            raise self.error(f"edge {path!r}: device type {gt.device_types[dt].id!r} has no input pin {dst_pin!r}", el)
        if op is None:
            raise self.error(f"edge {path!r}: device type {gt.device_types[st].id!r} has no output pin {src_pin!r}", el)
        if ip[1].message_type != op[1].message_type:
            raise self.error(f"edge {path!r}: output pin {src_pin!r} sends {op[1].message_type!r} but input pin "
                             f"{dst_pin!r} receives {ip[1].message_type!r}", el)
        key = (dt, ip[0])
        eidx = inst.edge_counts.get(key, 0)
        inst.edge_counts[key] = eidx + 1
        pk, sk = self.edge_packers[key]
        p_values = s_values = None
        p_el = s_el = el  # value errors point at the <P>/<S> element
        for c in el:
            tag = c.tag.rpartition("}")[2] if isinstance(c.tag, str) else ""
            if tag == "P":
                p_values, p_el = parse_json_body(c.text, self.file, c.sourceline, f"<P> of edge {path!r}"), c
            elif tag == "S":
                s_values, s_el = parse_json_body(c.text, self.file, c.sourceline, f"<S> of edge {path!r}"), c
        p_bytes = self._pack(pk, p_values, p_el, f"edge {path!r}")  # also checks values for pins without data
        s_bytes = self._pack(sk, s_values, s_el, f"edge {path!r}")
        if pk.size or sk.size:
            inst.edge_props.setdefault(key, bytearray()).extend(p_bytes)
            inst.edge_state.setdefault(key, bytearray()).extend(s_bytes)
        inst.edges.extend((src, op[0], dst, ip[0], eidx, self._send_index(el, path, op[1], src, op[0])))

    def _send_index(self, el: etree._Element, path: str, pin: OutputPin, src: int, spin: int) -> int:
        """Note the edge's v3 ``sendIndex`` (checked in :meth:`finish`); refused on a pin not indexed."""
        raw = el.get("sendIndex")
        if not pin.indexed:
            if raw is not None:
                raise self.error(f"edge {path!r} has sendIndex, but output pin {pin.name!r} is not indexed "
                                 "(declare it with indexed=\"true\")", el)
            return NO_SEND_INDEX
        k = None
        if raw is not None:
            try:
                k = int(raw)
                if k < 0:
                    raise ValueError
            except ValueError:
                raise self.error(f"edge {path!r}: sendIndex={raw!r} is not an integer >= 0", el) from None
        self.send_indices.setdefault((src, spin), []).append((k, self.inst.edge_count, el.sourceline or 0))
        return NO_SEND_INDEX

    def finish(self) -> Application:
        if self.graph_type is None:
            raise GraphError("the file has no <GraphType>", self.file)
        if not self.seen_instance:
            raise GraphError("the file has no <GraphInstance>", self.file)
        gt, types = self.graph_type, self.inst.dev_type
        number_indexed_edges(self.inst.edges, EDGE_WORDS, self.send_indices, self.inst.names,
                             lambda d: gt.device_types[types[d]], self.file)
        return Application(self.graph_type, self.inst, self.file)


def region_array(inst: Instance, rmap: Mapping[str, int] | None, file: str | None = None) -> tuple[array, list[int]]:
    """Per-device region numbers (unmapped devices are in region 0) and the sorted regions in use."""
    regions = array("I", bytes(4 * inst.device_count))
    used = {0} if inst.device_count else set()
    if rmap:
        used = set()
        for name, r in rmap.items():
            i = inst.index.get(name)
            if i is None:
                raise GraphError(f"region map names device {name!r}, which is not in the graph", file)
            if not isinstance(r, int) or isinstance(r, bool) or r < 0:
                raise GraphError(f"region map: device {name!r} has region {r!r}; regions are integers >= 0", file)
            regions[i] = r
        used = set(regions)
    return regions, sorted(used)


def write_instance(app: Application, out: IO[bytes], regions: array, type_hash: str) -> None:
    """Write the binary instance file the engine loads (docs/engine-protocol.md)."""
    inst, gt = app.instance, app.graph_type
    w = out.write
    w(INSTANCE_MAGIC)
    w(struct.pack("<I", INSTANCE_VERSION))
    w(type_hash.encode().ljust(64, b"\0")[:64])
    w(struct.pack("<IIII", inst.device_count, inst.edge_count, len(gt.device_types), len(inst.graph_properties)))
    w(inst.graph_properties)
    types = array("I", inst.dev_type)
    w(types.tobytes())
    w(regions.tobytes())
    blob = ("\0".join(inst.names) + "\0").encode() if inst.names else b""
    w(struct.pack("<I", len(blob)))
    w(blob)
    for t, _ in enumerate(gt.device_types):
        w(struct.pack("<I", inst.counts[t]))
        w(inst.props[t])
        w(inst.state[t])
    for t, d in enumerate(gt.device_types):
        for i, _ in enumerate(d.input_pins):
            key = (t, i)
            w(struct.pack("<I", inst.edge_counts.get(key, 0)))
            w(inst.edge_props.get(key, b""))
            w(inst.edge_state.get(key, b""))
    w(inst.edges.tobytes())
