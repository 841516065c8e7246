"""Typed, immutable model of a POETS graph type.

The graph-type walker (``walker.py`` with the ``v3.py``/``v4.py`` hooks) builds these
objects from graph-schema XML; the code generator renders them to C++ and ``values.py``
packs device and edge data with the same layout.  Layout follows graph-schema: packed, declaration order,
little-endian.  The model is version-neutral so v3/v4 parsing fills the same
objects (defaults, tuples, edge properties/state, indexed pins are already here).
"""
from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

#: C scalar type -> (struct code, python kind)
SCALAR_TYPES: dict[str, tuple[str, str]] = {
    "int8_t": ("b", "int"),
    "uint8_t": ("B", "int"),
    "int16_t": ("h", "int"),
    "uint16_t": ("H", "int"),
    "int32_t": ("i", "int"),
    "uint32_t": ("I", "int"),
    "int64_t": ("q", "int"),
    "uint64_t": ("Q", "int"),
    "char": ("b", "int"),
    "float": ("f", "float"),
    "double": ("d", "float"),
    "bool": ("B", "int"),
}


@dataclass(frozen=True)
class Scalar:
    """A scalar member: one C scalar type."""

    ctype: str
    default: Any = None
    cname: str | None = None  # the TypeDef it was declared with, if any (named so in the C code)

    @property
    def code(self) -> str:
        return SCALAR_TYPES[self.ctype][0]

    @property
    def is_float(self) -> bool:
        return SCALAR_TYPES[self.ctype][1] == "float"


@dataclass(frozen=True)
class Array:
    """A fixed-length array of an element type (scalar or tuple)."""

    element: FieldType
    length: int
    default: Any = None
    cname: str | None = None


@dataclass(frozen=True)
class Tuple:
    """A nested struct of named members."""

    members: tuple[Field, ...]
    default: Any = None
    cname: str | None = None


FieldType = Scalar | Array | Tuple


@dataclass(frozen=True)
class Field:
    """A named member of a struct."""

    name: str
    type: FieldType
    line: int | None = None


def scalar_count(ftype: FieldType) -> int:
    """How many scalars a member flattens to (the protocol sends them in this order)."""
    if isinstance(ftype, Scalar):
        return 1
    if isinstance(ftype, Array):
        return ftype.length * scalar_count(ftype.element)
    return sum(scalar_count(m.type) for m in ftype.members)


#: the most scalars one member or struct may hold (8 MiB of doubles): far above any POETS app (pstack's
#: ring oscillator has 1,024), and low enough that a mistyped array length is refused at once instead
#: of filling the memory while the values are packed
MAX_SCALARS = 1 << 20


#: how deeply members (tuples, arrays of arrays) and their values may nest: POETS apps use 3 at most;
#: a bound keeps every recursive walk over types and values far from Python's recursion limit
MAX_NESTING = 32


def size_problem(ftype: FieldType) -> str | None:
    """Why a member (or a whole struct, as a Tuple) is too large, or None if it is not."""
    n = scalar_count(ftype)
    if n > MAX_SCALARS:
        return f"{n} scalars, more than the {MAX_SCALARS} one member or struct may hold"
    return None


def flat_scalars(ftype: FieldType) -> Iterator[Scalar]:
    """The scalars of a member in memory order."""
    if isinstance(ftype, Scalar):
        yield ftype
    elif isinstance(ftype, Array):
        for _ in range(ftype.length):
            yield from flat_scalars(ftype.element)
    else:
        for m in ftype.members:
            yield from flat_scalars(m.type)


@dataclass(frozen=True)
class Struct:
    """A packed struct: device properties/state, message payload, edge data."""

    fields: tuple[Field, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.fields)

    @property
    def as_tuple(self) -> Tuple:
        return Tuple(self.fields)

    @property
    def scalars(self) -> list[Scalar]:
        return list(flat_scalars(self.as_tuple))

    @property
    def format(self) -> str:
        return "<" + "".join(s.code for s in self.scalars)

    @property
    def size(self) -> int:
        return struct.calcsize(self.format)

    def field(self, name: str) -> Field | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None


@dataclass(frozen=True)
class Code:
    """A piece of handler or shared C++ code and where it starts in the XML file."""

    text: str
    line: int
    what: str  # e.g. "OnReceive of pin 'input'" or "SharedCode"

    def __bool__(self) -> bool:
        return bool(self.text.strip())


@dataclass(frozen=True)
class MessageType:
    id: str
    payload: Struct
    line: int | None = None


@dataclass(frozen=True)
class InputPin:
    name: str
    message_type: str
    on_receive: Code
    properties: Struct = field(default_factory=Struct)
    state: Struct = field(default_factory=Struct)
    line: int | None = None
    supervisor: bool = False  # a v4 SupervisorInPin: replies and broadcasts from the supervisor arrive here


@dataclass(frozen=True)
class OutputPin:
    name: str
    message_type: str
    on_send: Code
    indexed: bool = False
    line: int | None = None
    supervisor: bool = False  # a v4 SupervisorOutPin: sends go to the supervisor, over no edge


@dataclass(frozen=True)
class DeviceType:
    id: str
    properties: Struct
    state: Struct
    input_pins: tuple[InputPin, ...]
    output_pins: tuple[OutputPin, ...]
    ready_to_send: Code
    shared_code: tuple[Code, ...] = ()
    on_init: Code | None = None
    on_hardware_idle: Code | None = None
    line: int | None = None
    external: bool = False  # a graph-schema ExternalType: served by a Python engine, no handlers

    def input_pin(self, name: str) -> InputPin | None:
        for p in self.input_pins:
            if p.name == name:
                return p
        return None

    def output_pin(self, name: str) -> OutputPin | None:
        for p in self.output_pins:
            if p.name == name:
                return p
        return None

    def input_index(self, name: str) -> int:
        return [p.name for p in self.input_pins].index(name)

    def output_index(self, name: str) -> int:
        return [p.name for p in self.output_pins].index(name)


#: the pin name a v4 device's SupervisorOutPin / SupervisorInPin gets in the model (no edge can name it)
SUPERVISOR_PIN = "__supervisor__"


@dataclass(frozen=True)
class SupervisorType:
    """A v4 ``<SupervisorType>`` (graph-schema.md s7): raw C++ pieces, kept as code.

    ``properties`` and ``state`` are free C++ member declarations (std::vector, initialisers),
    emitted as C++ structs; they are never packed, so they have no layout here.
    """

    id: str
    message_type: str  # of its one SupervisorInPin
    on_receive: Code
    code: Code
    properties: Code
    state: Code
    on_init: Code | None = None
    on_idle: Code | None = None  # OnSupervisorIdle
    on_stop: Code | None = None
    pin_id: str = ""
    line: int | None = None

    def handlers(self) -> list[Code]:
        return [c for c in (self.on_init, self.on_receive, self.on_idle, self.on_stop) if c is not None]


@dataclass(frozen=True)
class GraphType:
    """Everything that is compiled: the same graph type at any size builds one engine."""

    id: str
    version: int  # 2, 3 or 4: the dialect handler code is written in
    properties: Struct
    shared_code: tuple[Code, ...]
    message_types: tuple[MessageType, ...]
    device_types: tuple[DeviceType, ...]
    file: str = "<xml>"
    typedefs: tuple[tuple[str, FieldType], ...] = ()  # TypeDefs in document order, emitted as C typedefs
    supervisor: SupervisorType | None = None  # v4: the one supervisor of every instance of the type

    def message_type(self, mid: str) -> MessageType | None:
        for m in self.message_types:
            if m.id == mid:
                return m
        return None

    def device_type(self, did: str) -> DeviceType | None:
        for d in self.device_types:
            if d.id == did:
                return d
        return None
