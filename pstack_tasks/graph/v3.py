"""Graph-schema v2 and v3: typed data as member elements, the walker's hooks for these versions.

Structs are written as ``<Scalar>``/``<Array>``/``<Tuple>`` members with JSON defaults (a
``default`` attribute, or a v3 ``<Default>`` child), and ``<Types>`` declares named TypeDefs.
v2 is pstack's dialect: devices start through an input pin named ``__init__`` (no OnInit or
OnHardwareIdle), and a TypeDef may hold several members.  ``Documentation``, ``MetaData`` and
``HashDigest`` carry nothing we simulate and are skipped wherever they appear.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from lxml import etree

from pstack_tasks.exceptions import GraphError
from pstack_tasks.graph.elements import JsonError, children, json_value, line_of, local
from pstack_tasks.graph.model import (
    MAX_NESTING,
    SCALAR_TYPES,
    Array,
    DeviceType,
    Field,
    FieldType,
    Scalar,
    Struct,
    Tuple,
    size_problem,
)
from pstack_tasks.graph.values import ValueError_, check_value
from pstack_tasks.graph.walker import GraphTypeWalker

#: elements that may appear and carry nothing we simulate
IGNORED = frozenset({"Documentation", "MetaData", "HashDigest"})
SUPPORTED_SCALARS = ", ".join(t for t in SCALAR_TYPES if t != "bool")


class V3Types(GraphTypeWalker):
    """A v3 ``<GraphType>``: member elements, TypeDefs, OnInit and OnHardwareIdle."""

    version: ClassVar[int] = 3
    skipped: ClassVar[frozenset[str]] = IGNORED

    def __init__(self, file: str) -> None:
        super().__init__(file)
        self.depth = 0  # of the member being read (tuples and arrays nest)
        self.named: dict[str, FieldType] = {}  # TypeDefs by id, as members declared with them use them

    # ---- hooks --------------------------------------------------------------------------------
    def struct(self, el: etree._Element | None, what: str) -> Struct:
        struct = Struct(self.members(el))
        problem = size_problem(struct.as_tuple)
        if problem is not None:
            raise GraphError(f"{what}: {problem}", self.file, line_of(el))
        return struct

    def type_definitions(self, el: etree._Element) -> None:
        for td in self.elements(el, "<Types>"):
            if local(td) != "TypeDef":
                raise self.refusal(td, "<Types>")
            tid = self.ident(td)
            body = self.typedef_body(td, tid, [m for m in children(td) if local(m) not in IGNORED])
            if tid in self.named:
                raise self.error(f"duplicate TypeDef id {tid!r}", td)
            self.typedefs.append((tid, body))
            # members declared with this type are written with its name in the generated C
            self.named[tid] = dataclasses.replace(body, cname=tid)

    def typedef_body(self, td: etree._Element, tid: str, members: list[etree._Element]) -> FieldType:
        if len(members) != 1:
            raise self.error(f"TypeDef {tid!r} must hold exactly one member", td)
        return self.member(members[0]).type

    # ---- typed data ---------------------------------------------------------------------------
    def _tuple_members(self, el: etree._Element, what: str) -> tuple[Field, ...]:
        """A tuple's members; none is refused (as v4 refuses an empty nested struct): C++ gives an
        empty struct a size of 1, the packed layout 0, and the engine would not compile."""
        members = self.members(el)
        if not members:
            raise self.error(f"{what} has no members", el)
        return members

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

    def member(self, el: etree._Element) -> Field:
        self.depth += 1
        try:
            if self.depth > MAX_NESTING:
                raise self.error(f"members nested more than {MAX_NESTING} levels deep", el)
            return self._member(el)
        finally:
            self.depth -= 1

    def _member(self, el: etree._Element) -> Field:
        kind = local(el)
        name = self.ident(el, "name")
        if kind == "Scalar":
            ftype: FieldType = self.scalar_type(el)
        elif kind == "Array":
            ftype = self.array(el, name)
        elif kind == "Tuple":
            ftype = Tuple(self._tuple_members(el, f"tuple {name!r}"), self.default(el, name))
        elif kind == "Union":
            raise self.error(f"union {name!r}: unions are not supported (no POETS tool implements them)", el)
        else:
            raise self.error(f"unexpected <{kind}> where a Scalar, Array or Tuple member was expected", el)
        problem = size_problem(ftype)
        if problem is not None:
            raise self.error(f"member {name!r}: {problem}", el)
        if ftype.default is not None:
            try:
                check_value(ftype, ftype.default, name)
            except ValueError_ as e:
                raise self.error(f"bad default: {e}", el) from None
        return Field(name, ftype, line_of(el))

    def array(self, el: etree._Element, name: str) -> Array:
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
        return Array(element, length, self.default(el, name))

    def scalar_type(self, el: etree._Element) -> FieldType:
        ctype = el.get("type")
        name = el.get("name")
        if ctype is None:
            raise self.error(f"member {name!r} has no type attribute", el)
        if ctype in self.named:
            named = self.named[ctype]
            dflt = self.default(el, name) if local(el) != "Array" else None
            return named if dflt is None else dataclasses.replace(named, default=dflt)
        if ctype not in SCALAR_TYPES or ctype == "bool":
            raise self.error(f"member {name!r} has unsupported type {ctype!r} (supported: {SUPPORTED_SCALARS})", el)
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
            return json_value(text)
        except JsonError:
            pass
        try:
            return json_value("{" + text + "}")
        except JsonError as e:
            raise self.error(f"malformed default for member {name!r}: {e} in {text[:60]!r}", el) from None


class V2Types(V3Types):
    """A v2 ``<GraphType>`` (pstack's dialect): an ``__init__`` pin instead of OnInit, and TypeDefs
    of several members."""

    version: ClassVar[int] = 2
    dropped: ClassVar[dict[str, str]] = {
        tag: f"<{tag}> is graph-schema v3; in a v2 file initialise devices through an input pin named __init__"
        for tag in ("OnInit", "OnHardwareIdle")}

    def typedef_body(self, td: etree._Element, tid: str, members: list[etree._Element]) -> FieldType:
        if len(members) != 1:
            return Tuple(self._tuple_members(td, f"TypeDef {tid!r}"))
        return super().typedef_body(td, tid, members)

    def check_device_type(self, dt: DeviceType) -> None:
        init = dt.input_pin("__init__")
        if init is not None and init.message_type != "__init__":
            raise GraphError(f"device type {dt.id!r}: the __init__ pin must carry message type '__init__'",
                             self.file, init.line)
