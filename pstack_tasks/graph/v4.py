"""Graph-schema v4: C declarations and C initialisers, the walker's and the builder's hooks.

v4 keeps v3's skeleton (graph-schema.md section 9) but writes typed data as C declarations and
instance values as C brace initialisers in ``P``/``S`` attributes (``cdecl.py`` parses both).
:class:`V4Types` tells the one graph-type walker how to read a v4 struct and which v2/v3
elements v4 dropped; :class:`InstanceBuilderV4` reads the attributes where v2/v3 have JSON
children.  Everything else (identifiers, pins, devices, edges, value checks and their messages)
is the shared code's, so a v4 file ends in the same model and the same bytes as its v3 twin.

Supervisors (``SupervisorType``, device ``SupervisorOutPin``/``SupervisorInPin``) are read by
``supervisor.py``.  Refused with file:line and the element: externals (as in every version), the
elements v4 dropped (``Documentation``, ``MetaData``, ``HashDigest``, ``OnThreadIdle``, ...), and
child ``<P>``/``<S>`` value elements.  ``<Types>``/``<TypeDef>`` (which graph-schema's v4 dropped)
are read, their bodies written as v4 declarations: see :meth:`V4Types.type_definitions`.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

from lxml import etree

from pstack_tasks.graph.cdecl import flat_ints, int_member_names, parse_struct, parse_values
from pstack_tasks.graph.elements import children, element_text, line_of, local
from pstack_tasks.graph.instance import Given, InstanceBuilder, Values
from pstack_tasks.graph.model import FieldType, GraphType, MessageType, Struct, SupervisorType, Tuple
from pstack_tasks.graph.supervisor import device_supervisor_pin, supervisor_type
from pstack_tasks.graph.walker import DeviceParts, GraphTypeWalker

#: v2/v3 elements that v4 dropped (graph-schema.md section 9), with what to do instead
DROPPED = {
    "Documentation": "v4 has no <Documentation>; use an XML comment",
    "MetaData": "v4 has no <MetaData>; use an XML comment",
    "HashDigest": "v4 has no <HashDigest>",
    "DeviceSharedCode": "<DeviceSharedCode> is v2; use <SharedCode>",
    "OnThreadIdle": "<OnThreadIdle> is not a v4 handler",
}


class V4Types(GraphTypeWalker):
    """A v4 ``<GraphType>``: structs as C member declarations (no defaults)."""

    version: ClassVar[int] = 4
    dropped: ClassVar[dict[str, str]] = DROPPED
    supervisors: ClassVar[bool] = True

    def supervisor_pin(self, c: etree._Element, dev: DeviceParts) -> None:
        device_supervisor_pin(self, c, dev)

    def supervisor_type(self, d: etree._Element, message_types: list[MessageType]) -> SupervisorType:
        return supervisor_type(self, d, message_types)

    def parse(self, gt: etree._Element) -> GraphType:
        """The graph type; the supervisor's replies and broadcasts need one message type for every device."""
        graph = super().parse(gt)
        kinds = {p.message_type for d in graph.device_types for p in d.input_pins if p.supervisor}
        if len(kinds) > 1:
            raise self.error("device <SupervisorInPin>s use different message types "
                             f"({', '.join(sorted(kinds))}); the supervisor's replies and broadcasts have one", gt)
        pins = [p.supervisor for d in graph.device_types for p in d.input_pins]
        pins += [p.supervisor for d in graph.device_types for p in d.output_pins]
        if graph.supervisor is None and any(pins):
            raise self.error("device types have supervisor pins but the graph type has no <SupervisorType>", gt)
        return graph

    def __init__(self, file: str) -> None:
        super().__init__(file)
        self.named: dict[str, FieldType] = {}  # TypeDefs by id, usable as member types

    def struct(self, el: etree._Element | None, what: str) -> Struct:
        if el is None:
            return Struct()
        return parse_struct(element_text(el, self.file), self.file, line_of(el), what, self.named)

    def type_definitions(self, el: etree._Element) -> None:
        """``<Types>`` with ``<TypeDef id="T">`` holding C member declarations, as v4 structs are
        written: one declaration gives T its type (its name ignored, as v3's one member), several
        make T a struct of them.  graph-schema's v4 has no TypeDefs; pstack accepts v3's, written
        the v4 way, so that a converted v3 application keeps its named types."""
        for td in children(el):
            if local(td) != "TypeDef":
                raise self.refusal(td, "<Types>")
            tid = self.ident(td)
            if tid in self.named:
                raise self.error(f"duplicate TypeDef id {tid!r}", td)
            members = self.struct(td, f"<TypeDef> {tid!r}").fields
            if not members:
                raise self.error(f"<TypeDef> {tid!r} declares no member", td)
            body: FieldType = members[0].type if len(members) == 1 else Tuple(members)
            self.typedefs.append((tid, body))
            self.named[tid] = dataclasses.replace(body, cname=tid)


class InstanceBuilderV4(InstanceBuilder):
    """The instance builder fed v4 ``P``/``S`` attributes, each a brace initialiser of its struct."""

    def __init__(self, file: str, walker: type[GraphTypeWalker]) -> None:
        super().__init__(file, walker)
        self._int_names: dict[int, tuple[str, ...] | None] = {}  # by id() of a struct of the graph type

    def given(self, el: etree._Element, kind: str, name: str, props: Struct, state: Struct) -> Given:
        """The ``P`` and ``S`` attributes of a ``DevI``/``EdgeI``; errors name its line."""
        if len(el):
            self._refuse_children(el, {"P": "P", "S": "S"}, f"{kind} {name!r}")
        p_text, s_text = el.get("P"), el.get("S")
        if p_text is None and s_text is None:
            return None, el, None, el  # most devices of a large graph
        owner, line = f"{kind} {name!r}", line_of(el)
        return (self._values(p_text, props, line, f"P of {owner}"), el,
                self._values(s_text, state, line, f"S of {owner}"), el)

    def graph_values(self, el: etree._Element, props: Struct) -> tuple[Values, etree._Element]:
        """The graph instance's ``P`` attribute."""
        self._refuse_children(el, {"Properties": "P"}, "the graph instance")
        return self._values(el.get("P"), props, line_of(el), "P of the graph instance"), el

    def _refuse_children(self, el: etree._Element, value_tags: dict[str, str], owner: str) -> None:
        """v4 has no value elements: ``value_tags`` maps each v2/v3 one to the attribute instead."""
        for c in children(el):
            if local(c) in value_tags:
                raise self.error(f"<{local(c)}> element in <{local(el)}>: v4 gives {owner} values as a C "
                                 f'initialiser attribute, e.g. {value_tags[local(c)]}="{{1, 2}}"', c)

    def _values(self, text: str | None, spec: Struct, line: int | None, what: str) -> Values:
        """An attribute's values; flat integer initialisers of all-integer structs skip the parser."""
        if text is None:
            return None
        names = self._int_names.get(id(spec), ())
        if names == ():
            names = self._int_names[id(spec)] = int_member_names(spec)
        if names is not None:
            ints = flat_ints(text)
            if ints is not None and len(ints) <= len(names):
                return dict(zip(names, ints))
        return parse_values(text, spec, self.file, line, what)
