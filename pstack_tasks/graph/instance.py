"""Pack a graph instance's devices and edges as the streaming reader yields them.

Instances can hold millions of devices, so :class:`InstanceBuilder` sees each ``DevI``/``EdgeI``
once, checks it against the graph type, packs its values into the per-type byte strings of an
:class:`~pstack_tasks.graph.application.Instance`, and keeps nothing of the element.  Values are
given as JSON ``<P>``/``<S>`` children in v2/v3; a version that writes them otherwise (v4's C
initialiser attributes) overrides the two hooks :meth:`~InstanceBuilder.given` and
:meth:`~InstanceBuilder.graph_values`, and every check and message stays here.
"""
from __future__ import annotations

import os
import re
from typing import Any

from lxml import etree

from pstack_tasks.exceptions import GraphError
from pstack_tasks.graph.application import EDGE_WORDS, NO_SEND_INDEX, Application, Instance
from pstack_tasks.graph.elements import children, line_of, local, namespace_of, parse_json_body
from pstack_tasks.graph.indexed import number_indexed_edges
from pstack_tasks.graph.model import GraphType, InputPin, OutputPin, Struct
from pstack_tasks.graph.values import Packer, ValueError_
from pstack_tasks.graph.walker import GraphTypeWalker, graph_type_in_file

EDGE_PATH = re.compile(r"^(.*):([A-Za-z_]\w*)-(.*):([A-Za-z_]\w*)$")

Values = dict[str, Any] | None
#: values given for an element's properties and state, each with the element its errors name
#: (its line is read only for an error: reading ``sourceline`` costs time on millions of elements)
Given = tuple[Values, etree._Element, Values, etree._Element]


class InstanceBuilder:
    """Collects the graph type and packs devices and edges as iterparse yields them."""

    def __init__(self, file: str, walker: type[GraphTypeWalker]) -> None:
        self.file = file
        self.walker = walker
        ns = namespace_of(walker.version)
        self.q_p, self.q_s = f"{{{ns}}}P", f"{{{ns}}}S"
        self.graph_type: GraphType | None = None
        self.inst = Instance()
        self.seen_instance = False
        # indexed (src, pin) -> [(sendIndex or None, edge number, line)]
        self.send_indices: dict[tuple[int, int], list[tuple[int | None, int, int]]] = {}

    # ---- the version's hooks ------------------------------------------------------------------
    def given(self, el: etree._Element, kind: str, name: str, props: Struct, state: Struct) -> Given:
        """The property and state values of a ``DevI``/``EdgeI`` (``kind`` "device" or "edge" and
        ``name`` say which in errors): JSON ``<P>``/``<S>`` children."""
        p_values = s_values = None
        p_el = s_el = el  # value errors point at the <P>/<S> element
        for c in el:
            if c.tag == self.q_p:
                p_values, p_el = parse_json_body(c.text, self.file, line_of(c), f"<P> of {kind} {name!r}"), c
            elif c.tag == self.q_s:
                s_values, s_el = parse_json_body(c.text, self.file, line_of(c), f"<S> of {kind} {name!r}"), c
        return p_values, p_el, s_values, s_el

    def graph_values(self, el: etree._Element, props: Struct) -> tuple[Values, etree._Element]:
        """The graph instance's property values (a JSON ``<Properties>`` child), and the element
        their errors name."""
        values: Values = None
        where = el
        for c in children(el):
            if local(c) == "Properties":
                values, where = parse_json_body(c.text, self.file, line_of(c), "graph <Properties>"), c
        return values, where

    # ---- elements -----------------------------------------------------------------------------
    def error(self, msg: str, el: etree._Element) -> GraphError:
        return GraphError(msg, self.file, line_of(el))

    def other(self, tag: str, el: etree._Element) -> None:
        """Any element of the file but ``DevI`` and ``EdgeI``."""
        if tag == "GraphType":
            if self.graph_type is not None:
                raise self.error("more than one <GraphType> in the file", el)
            self._prepare(self.walker(self.file).parse(el))
        elif tag == "GraphTypeReference":
            self._reference(el)
        elif tag == "GraphInstance":
            self._graph_instance(el)

    def _graph_instance(self, el: etree._Element) -> None:
        if self.seen_instance:
            raise self.error("more than one <GraphInstance> in the file", el)
        self.seen_instance = True
        gt = self._require_type(el)
        tid = el.get("graphTypeId")
        if tid != gt.id:
            raise self.error(f"graph instance refers to graph type {tid!r}, but the file defines {gt.id!r}", el)
        self.inst.id = el.get("id") or ""
        values, where = self.graph_values(el, gt.properties)
        if values is not None:
            self.inst.graph_properties = self._pack(self.gprops, values, where, "graph properties")

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
            return  # the <GraphInstance> check matches it against the type found in the file
        if self.graph_type is not None:
            raise self.error("the file has both a <GraphType> and a <GraphTypeReference> with src", el)
        base = os.path.dirname(self.file) if self.file != "<xml>" else os.getcwd()
        self._prepare(graph_type_in_file(os.path.join(base, src), rid, self.walker, self.file, line_of(el)))

    def _require_type(self, el: etree._Element) -> GraphType:
        if self.graph_type is None:
            raise self.error("instance data before any <GraphType>", el)
        return self.graph_type

    def _prepare(self, gt: GraphType) -> None:
        self.graph_type = gt
        self.type_index = {d.id: i for i, d in enumerate(gt.device_types)}
        self.pp = [Packer(d.properties) for d in gt.device_types]
        self.sp = [Packer(d.state) for d in gt.device_types]
        # a v4 device's supervisor pins have no edges (graph-schema.md s7): no EdgeI may name them
        self.inputs = [{p.name: (i, p) for i, p in enumerate(d.input_pins) if not p.supervisor}
                       for d in gt.device_types]
        self.outputs = [{p.name: (i, p) for i, p in enumerate(d.output_pins) if not p.supervisor}
                        for d in gt.device_types]
        self.edge_packers = {(t, i): (Packer(p.properties), Packer(p.state))
                             for t, d in enumerate(gt.device_types) for i, p in enumerate(d.input_pins)}
        self.gprops = Packer(gt.properties)
        self.inst.graph_properties = self.gprops.default_bytes
        self.inst.props = [bytearray() for _ in gt.device_types]
        self.inst.state = [bytearray() for _ in gt.device_types]
        self.inst.counts = [0] * len(gt.device_types)

    def _pack(self, packer: Packer, values: Values, el: etree._Element, what: str, name: str | None = None) -> bytes:
        """Packed ``values``; errors name ``what`` (and ``name``, quoted: formatted only then)."""
        try:
            return packer.pack(values)
        except ValueError_ as e:
            owner = what if name is None else f"{what} {name!r}"
            raise GraphError(f"{owner}: {e}", self.file, line_of(el)) from None

    def device(self, el: etree._Element) -> None:
        gt = self._require_type(el)
        inst = self.inst
        did = el.get("id")
        if not did:
            raise self.error("<DevI> without an id", el)
        if did in inst.index:
            raise self.error(f"duplicate device id {did!r}", el)
        dtype = el.get("type") or ""
        t = self.type_index.get(dtype)
        if t is None:
            raise self.error(f"device {did!r} has unknown device type {el.get('type')!r} (known: "
                             + ", ".join(self.type_index) + ")", el)
        dt = gt.device_types[t]
        p_values, p_el, s_values, s_el = self.given(el, "device", did, dt.properties, dt.state)
        inst.index[did] = len(inst.names)
        inst.names.append(did)
        inst.dev_type.append(t)
        inst.props[t] += self._pack(self.pp[t], p_values, p_el, "properties of device", did)
        inst.state[t] += self._pack(self.sp[t], s_values, s_el, "state of device", did)
        inst.counts[t] += 1

    def _pins(self, el: etree._Element, path: str) -> tuple[int, int, tuple[int, InputPin], int, tuple[int, OutputPin]]:
        """The edge's destination and source devices and pins, checked against the graph type."""
        gt = self._require_type(el)
        m = EDGE_PATH.match(path)
        if not m:
            raise self.error(f"malformed edge path {path!r}; expected 'dstDevice:dstPin-srcDevice:srcPin'", el)
        dst_name, dst_pin, src_name, src_pin = m.groups()
        dst = self.inst.index.get(dst_name)
        src = self.inst.index.get(src_name)
        if dst is None:
            raise self.error(f"edge {path!r}: unknown destination device {dst_name!r}", el)
        if src is None:
            raise self.error(f"edge {path!r}: unknown source device {src_name!r}", el)
        dt, st = self.inst.dev_type[dst], self.inst.dev_type[src]
        ip = self.inputs[dt].get(dst_pin)
        op = self.outputs[st].get(src_pin)
        if ip is None:
            raise self.error(f"edge {path!r}: device type {gt.device_types[dt].id!r} has no input pin {dst_pin!r}", el)
        if op is None:
            raise self.error(f"edge {path!r}: device type {gt.device_types[st].id!r} has no output pin {src_pin!r}", el)
        if ip[1].message_type != op[1].message_type:
            raise self.error(f"edge {path!r}: output pin {src_pin!r} sends {op[1].message_type!r} but input pin "
                             f"{dst_pin!r} receives {ip[1].message_type!r}", el)
        return dst, dt, ip, src, op

    def edge(self, el: etree._Element) -> None:
        inst = self.inst
        path = el.get("path") or ""
        dst, dt, (dpin, ip), src, (spin, op) = self._pins(el, path)
        key = (dt, dpin)
        eidx = inst.edge_counts.get(key, 0)
        inst.edge_counts[key] = eidx + 1
        pk, sk = self.edge_packers[key]
        p_values, p_el, s_values, s_el = self.given(el, "edge", path, ip.properties, ip.state)
        p_bytes = self._pack(pk, p_values, p_el, "edge", path)  # also checks values for pins without data
        s_bytes = self._pack(sk, s_values, s_el, "edge", path)
        if pk.size or sk.size:
            inst.edge_props.setdefault(key, bytearray()).extend(p_bytes)
            inst.edge_state.setdefault(key, bytearray()).extend(s_bytes)
        inst.edges.extend((src, spin, dst, dpin, eidx, self._send_index(el, path, op, src, spin)))

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
        self.send_indices.setdefault((src, spin), []).append((k, self.inst.edge_count, line_of(el) or 0))
        return NO_SEND_INDEX

    def finish(self) -> Application:
        if self.graph_type is None:
            raise GraphError("the file has no <GraphType>", self.file)
        if not self.seen_instance:
            raise GraphError("the file has no <GraphInstance>", self.file)
        gt, types = self.graph_type, self.inst.dev_type
        number_indexed_edges(self.inst.edges, EDGE_WORDS, self.send_indices, self.inst.names,
                             lambda d: gt.device_types[types[d]], self.file)
        return Application(gt, self.inst, self.file)
