"""Device state as the debugger reads and writes it: names to bytes through the graph stage's packing.

A device's state is the packed struct the graph stage computed (:class:`~pstack_tasks.graph.values.Packer`:
declaration order, little-endian, ``#pragma pack(1)``), so reading is ``Packer.unpack`` of the
bytes the engine holds, writing is ``Packer.pack`` of the merged values (which checks every
value against its member's type), and a breakpoint's field is an offset and a struct code.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from pstack_tasks.exceptions import DebugError
from pstack_tasks.graph.model import Array, DeviceType, Scalar, Struct, flat_scalars
from pstack_tasks.graph.values import Packer, ValueError_

#: the comparisons a breakpoint may make, by their number in debug_scheduler.cpp
OPERATORS = ("==", "!=", "<", "<=", ">", ">=")


@dataclass(frozen=True)
class ScalarField:
    """Where a scalar state member lies in its device's state struct."""

    offset: int
    code: str  #: the struct module's code ('I' for uint32_t); the debug engine reads it so
    scalar: Scalar


class StateLayout:
    """The state struct of one device type."""

    def __init__(self, dt: DeviceType) -> None:
        self.device_type = dt
        self.packer = Packer(dt.state)
        # Per top-level member: its name, its first flat scalar, and how to rebuild it from the flat
        # values (a scalar, a run of scalars for an array of scalars, else the graph stage's rebuild).
        self._members: list[tuple[str, int, int | None, Packer | None]] = []
        at = 0
        for f in dt.state.fields:
            n = len(list(flat_scalars(f.type)))
            if isinstance(f.type, Scalar):
                self._members.append((f.name, at, None, None))
            elif isinstance(f.type, Array) and isinstance(f.type.element, Scalar):
                self._members.append((f.name, at, n, None))
            else:
                self._members.append((f.name, at, -1, Packer(Struct((f,)))))
            at += n

    def names(self) -> list[str]:
        return [f.name for f in self.device_type.state.fields]

    def read(self, data: bytes) -> dict[str, Any]:
        """The state ``{member: value}`` of the struct's bytes (``until`` predicates read it after
        every event: arrays of scalars are slices of the flat values, not rebuilt one by one)."""
        if not self.packer.size:
            return {}
        flat = self.packer.struct.unpack(data)
        out: dict[str, Any] = {}
        for name, at, n, nested in self._members:
            if n is None:
                out[name] = flat[at]
            elif nested is None:
                out[name] = list(flat[at:at + n])
            else:
                out[name] = nested.unpack(nested.struct.pack(*flat[at:at + len(nested.scalars)]))[name]
        return out

    def write(self, data: bytes, device: str, changes: dict[str, Any]) -> bytes:
        """The struct's bytes with ``changes`` applied; refuses an unknown member or a bad value."""
        unknown = sorted(set(changes) - set(self.names()))
        if unknown:
            raise DebugError(f"device '{device}' (type '{self.device_type.id}') has no state field "
                             f"{unknown[0]!r}; its fields: {', '.join(self.names()) or 'none'}")
        values = self.read(data)
        values.update(changes)
        try:
            return self.packer.pack(values)
        except ValueError_ as e:
            raise DebugError(f"set_state of device '{device}': {e}") from None

    def scalar(self, device: str, name: str) -> ScalarField:
        """The offset and type of scalar member ``name`` (breakpoints compare scalars)."""
        found = field_at(self.device_type.state, name)
        if isinstance(found, ScalarField):
            return found
        if found is not None:
            raise DebugError(f"break_when: state field {name!r} of device '{device}' is not a scalar "
                             "(breakpoints compare scalar fields)")
        raise DebugError(f"device '{device}' (type '{self.device_type.id}') has no state field {name!r}; "
                         f"its fields: {', '.join(self.names()) or 'none'}")


def field_at(spec: Struct, name: str) -> ScalarField | int | None:
    """Where member ``name`` of a packed struct lies: a :class:`ScalarField`, the offset of a
    member that is no scalar, or None when there is no such member."""
    offset = 0
    for f in spec.fields:
        if f.name == name:
            return ScalarField(offset, f.type.code, f.type) if isinstance(f.type, Scalar) else offset
        offset += struct.calcsize("<" + "".join(s.code for s in flat_scalars(f.type)))
    return None


def check_operator(op: str) -> int:
    """The number of comparison ``op`` in the debug engine; refuses any other."""
    if op not in OPERATORS:
        raise DebugError(f"break_when: unknown comparison {op!r}; use one of {' '.join(OPERATORS)}")
    return OPERATORS.index(op)


def check_break_value(fld: ScalarField, value: Any, what: str) -> str:
    """The text of a breakpoint's value, checked against its field's type."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DebugError(f"break_when: {what} is {fld.scalar.ctype}; {value!r} is not a number")
    if not fld.scalar.is_float:
        if isinstance(value, float) and not value.is_integer():
            raise DebugError(f"break_when: {what} is {fld.scalar.ctype}; {value!r} is not an integer")
        return str(int(value))
    return repr(float(value))
