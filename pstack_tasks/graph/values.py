"""Pack graph-schema values (defaults overlaid with instance JSON) into packed structs.

The engine reads these bytes directly as its C structs, so the layout here must
match the generated ``#pragma pack(1)`` structs: declaration order, little-endian.
"""
from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

from pstack_tasks.graph.model import Array, FieldType, Scalar, Struct, Tuple, scalar_count


class ValueError_(Exception):
    """Internal: a value does not fit its member; callers turn it into a GraphError."""


#: integer struct code -> (min, max)
_INT_RANGE = {c: ((-(1 << (8 * struct.calcsize(c) - 1)), (1 << (8 * struct.calcsize(c) - 1)) - 1) if c.islower()
                  else (0, (1 << (8 * struct.calcsize(c))) - 1)) for c in "bBhHiIqQ"}


def check_value(ftype: FieldType, value: Any, path: str) -> None:
    """Raise ValueError_ (naming ``path``) if ``value`` does not fit member type ``ftype``."""
    _fill(ftype, value, [0] * scalar_count(ftype), 0, path)


def _fill(ftype: FieldType, value: Any, out: list[Any], pos: int, path: str) -> None:
    """Write ``value`` for member type ``ftype`` into the flat list ``out`` at ``pos``."""
    if value is None:  # JSON null: graph-schema gives it no meaning, so it is refused, never read as 0
        raise ValueError_(f"{path or 'value'}: null is not a value for {_kind(ftype)} "
                          "(give a value, or leave the member out to keep its default)")
    if isinstance(ftype, Scalar):
        out[pos] = _scalar(ftype, value, path)
    elif isinstance(ftype, Array):
        _fill_array(ftype, value, out, pos, path)
    else:
        _fill_tuple(ftype, value, out, pos, path)


def _kind(ftype: FieldType) -> str:
    """How a member type is named in errors: ``uint32_t``, ``an array``, ``a tuple``."""
    if isinstance(ftype, Scalar):
        return ftype.ctype
    return "an array" if isinstance(ftype, Array) else "a tuple"


def _scalar(ftype: Scalar, value: Any, path: str) -> int | float:
    """``value`` checked for scalar type ``ftype`` (JSON booleans are 0/1, integral floats ints)."""
    if isinstance(value, bool):
        value = int(value)
    if ftype.is_float:
        if not isinstance(value, (int, float)):
            raise ValueError_(f"{path}: expected a number, got {value!r}")
        try:
            fvalue = float(value)
            if ftype.code == "f":
                struct.pack("<f", fvalue)
        except OverflowError:
            raise ValueError_(f"{path}: {value!r} is out of range for {ftype.ctype}") from None
        return fvalue
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise ValueError_(f"{path}: expected an integer for {ftype.ctype}, got {value!r}")
    lo, hi = _INT_RANGE[ftype.code]
    if not lo <= value <= hi:
        raise ValueError_(f"{path}: {value} is out of range for {ftype.ctype} ({lo}..{hi})")
    return value


def _fill_array(ftype: Array, value: Any, out: list[Any], pos: int, path: str) -> None:
    """An array's values: a list, a sparse ``{"index": value}`` object, or a string for char[]."""
    step = scalar_count(ftype.element)
    if isinstance(value, str) and isinstance(ftype.element, Scalar) and ftype.element.ctype == "char":
        data = value.encode()
        if len(data) > ftype.length:
            raise ValueError_(f"{path}: string of {len(data)} bytes does not fit char[{ftype.length}]")
        value = [b - 256 if b > 127 else b for b in data]  # char is signed
    if isinstance(value, list):
        if len(value) > ftype.length:
            raise ValueError_(f"{path}: {len(value)} values for an array of length {ftype.length}")
        items: Iterable[tuple[int, Any]] = enumerate(value)
    elif isinstance(value, dict):  # sparse form {"index": value}
        items = ((_sparse_index(k, ftype.length, path), v) for k, v in value.items())  # checked as filled
    else:
        raise ValueError_(f"{path}: expected a list for an array, got {value!r}")
    for i, v in items:
        _fill(ftype.element, v, out, pos + i * step, f"{path}[{i}]")


def _sparse_index(key: str, length: int, path: str) -> int:
    try:
        i = int(key)
    except ValueError:
        raise ValueError_(f"{path}: sparse array index {key!r} is not an integer") from None
    if not 0 <= i < length:
        raise ValueError_(f"{path}: index {i} outside array of length {length}")
    return i


def _fill_tuple(ftype: Tuple, value: Any, out: list[Any], pos: int, path: str) -> None:
    if not isinstance(value, dict):
        raise ValueError_(f"{path}: expected an object for a tuple, got {value!r}")
    prefix = path + "." if path else ""
    offsets = {}
    p = pos
    for m in ftype.members:
        offsets[m.name] = (p, m.type)
        p += scalar_count(m.type)
    for k, v in value.items():
        if k not in offsets:
            raise ValueError_(f"{prefix}{k}: no such member (members: {', '.join(offsets) or 'none'})")
        mp, mt = offsets[k]
        _fill(mt, v, out, mp, f"{prefix}{k}")


def _defaults(ftype: FieldType, out: list[Any], pos: int) -> None:
    """Write the spec defaults of ``ftype`` (members' own defaults first, then the container's)."""
    if isinstance(ftype, Array):
        step = scalar_count(ftype.element)
        for i in range(ftype.length):
            _defaults(ftype.element, out, pos + i * step)
    elif isinstance(ftype, Tuple):
        p = pos
        for m in ftype.members:
            _defaults(m.type, out, p)
            p += scalar_count(m.type)
    if ftype.default is not None:
        _fill(ftype, ftype.default, out, pos, "default")


class Packer:
    """Packs value dicts for one struct; defaults are computed once."""

    def __init__(self, spec: Struct) -> None:
        self.spec = spec
        self.scalars = spec.scalars
        self.struct = struct.Struct(spec.format)
        self.size = self.struct.size
        base: list[Any] = [0.0 if s.is_float else 0 for s in self.scalars]
        try:
            _defaults(spec.as_tuple, base, 0)
        except ValueError_ as e:
            raise ValueError_(f"bad default: {e}") from None
        self.base = base
        self.default_bytes = self.struct.pack(*base) if self.scalars else b""
        # Fast path for the common case (millions of <P> with plain integer scalars): the flat
        # index of each top-level integer scalar.  Anything else takes the checked path.
        self.int_index: dict[str, int] = {}
        pos = 0
        for f in spec.fields:
            if isinstance(f.type, Scalar) and not f.type.is_float:
                self.int_index[f.name] = pos
            pos += scalar_count(f.type)

    def pack(self, values: dict[str, Any] | None) -> bytes:
        """Bytes for ``values`` over the defaults; raises ValueError_ naming the member."""
        if not values:
            return self.default_bytes
        index = self.int_index
        out = list(self.base)
        for k, v in values.items():
            i = index.get(k)
            if i is None or type(v) is not int:
                break
            out[i] = v
        else:
            try:
                return self.struct.pack(*out)
            except struct.error:
                pass  # out of range: the checked path below names the member
        out = list(self.base)
        _fill(self.spec.as_tuple, values, out, 0, "")
        try:
            return self.struct.pack(*out)
        except struct.error:
            for s, v in zip(self.scalars, out):
                try:
                    struct.pack("<" + s.code, v)
                except struct.error:
                    raise ValueError_(f"value {v!r} does not fit {s.ctype}") from None
            raise

    def unpack(self, data: bytes) -> dict[str, Any]:
        """The inverse of :meth:`pack` (scalars and arrays), used for checks and debugging."""
        flat = list(self.struct.unpack(data)) if self.scalars else []
        return _rebuild_members(self.spec.as_tuple, flat, [0])


def _rebuild(ftype: FieldType, flat: list[Any], pos: list[int]) -> Any:
    if isinstance(ftype, Scalar):
        v = flat[pos[0]]
        pos[0] += 1
        return v
    if isinstance(ftype, Array):
        return [_rebuild(ftype.element, flat, pos) for _ in range(ftype.length)]
    return _rebuild_members(ftype, flat, pos)


def _rebuild_members(ftype: Tuple, flat: list[Any], pos: list[int]) -> dict[str, Any]:
    return {m.name: _rebuild(m.type, flat, pos) for m in ftype.members}
