"""Message items as engines write them into a region's queue, read and written in Python.

An item is ``0 <device> <pin> <nfields> <f1> ... <fn>`` (docs/engine-protocol.md, "Items and
queues"): the sending device's number, its output pin's position, and the payload's scalars in
declaration order.  ``inspect`` decodes the items waiting in a running process's queues with the
graph type's message layouts; ``inject`` encodes one as the engine itself would, so the receiving
engine cannot tell it from a message sent by another region.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from pstack_tasks.exceptions import ConfigurationError
from pstack_tasks.graph.application import Application
from pstack_tasks.graph.model import OutputPin, Scalar, Struct
from pstack_tasks.graph.values import Packer, ValueError_
from pstack_tasks.protocol import ItemKind

_CONTROL = {ItemKind.STOP: "stop", ItemKind.QUIESCENT: "quiescent", ItemKind.HARDWARE_IDLE: "hardware idle"}


@dataclass(frozen=True)
class Sender:
    """A device's output pin, resolved against an application: what an item names."""

    device: int
    name: str
    pin_index: int
    pin: OutputPin
    payload: Struct


def sender(app: Application, device: str | int, pin: str | int) -> Sender:
    """The output pin ``pin`` of ``device`` (names, or numbers as items carry them).

    Raises:
        ConfigurationError: no such device, or its type has no such output pin.
    """
    inst, gt = app.instance, app.graph_type
    d = device if isinstance(device, int) else inst.index.get(device)
    if d is None or not 0 <= d < inst.device_count:
        raise ConfigurationError(f"the application has no device {device!r}")
    dtype = gt.device_types[inst.dev_type[d]]
    pins = dtype.output_pins
    k = pin if isinstance(pin, int) else next((i for i, p in enumerate(pins) if p.name == pin), None)
    if k is None or not 0 <= k < len(pins):
        names = ", ".join(p.name for p in pins) or "none"
        raise ConfigurationError(f"device {inst.names[d]!r} (type {dtype.id}) has no output pin {pin!r} "
                                 f"(its output pins: {names})")
    out = pins[k]
    mt = gt.message_type(out.message_type)
    return Sender(d, inst.names[d], k, out, mt.payload if mt is not None else Struct())


def encode(s: Sender, fields: dict[str, Any]) -> str:
    """The item a send of ``fields`` (over the message type's defaults) on ``s`` is.

    Raises:
        ConfigurationError: a field the message type does not have, or a value that does not fit.
    """
    known = {f.name for f in s.payload.fields}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ConfigurationError(f"message type {s.pin.message_type!r} of pin {s.pin.name!r} has no field "
                                 f"{', '.join(unknown)} (its fields: {', '.join(sorted(known)) or 'none'})")
    scalars = s.payload.scalars
    flat: list[Any] = []
    if scalars:
        try:
            packed = Packer(s.payload).pack(dict(fields))
        except ValueError_ as e:
            raise ConfigurationError(f"message {s.pin.message_type!r}: {e}") from None
        flat = list(struct.unpack(s.payload.format, packed))
    words = [ItemKind.MESSAGE, str(s.device), str(s.pin_index), str(len(flat))]
    words += [_scalar_text(sc, v) for sc, v in zip(scalars, flat)]
    return " ".join(words)


def _scalar_text(s: Scalar, v: Any) -> str:
    """A scalar as the engine writes it: integers in decimal, float with 9 and double with 17
    significant digits (which read back to the same bits)."""
    if s.ctype == "double":
        return "%.17g" % v
    if s.ctype == "float":
        return "%.9g" % v
    return str(int(v))


def decode(app: Application, item: str) -> dict[str, Any]:
    """An item as a dict: ``{"kind": "message", "src": device, "pin": name, "fields": {...}}`` for
    a message (``"index"`` too for an indexed send), ``{"kind": "stop"|"quiescent"|..., "text"}``
    for a control item, ``{"kind": "unreadable", "text"}`` for anything else."""
    words = item.split()
    if not words or words[0] not in (ItemKind.MESSAGE, ItemKind.INDEXED_MESSAGE):
        kind = _CONTROL.get(words[0] if words else "", "unreadable")
        return {"kind": kind, "text": item}
    try:
        return _decode_message(app, words)
    except (ValueError, IndexError, ConfigurationError, struct.error):
        return {"kind": "unreadable", "text": item}


def _decode_message(app: Application, words: list[str]) -> dict[str, Any]:
    indexed = words[0] == ItemKind.INDEXED_MESSAGE
    s = sender(app, int(words[1]), int(words[2]))
    at = 4 if indexed else 3
    n = int(words[at])
    values = words[at + 1: at + 1 + n]
    scalars = s.payload.scalars
    if len(values) != n or n != len(scalars):
        raise ValueError("field count")
    flat = [float(v) if sc.is_float else int(v) for sc, v in zip(scalars, values)]
    fields = Packer(s.payload).unpack(struct.pack(s.payload.format, *flat)) if scalars else {}
    out: dict[str, Any] = {"kind": "message", "src": s.name, "pin": s.pin.name, "type": s.pin.message_type,
                           "fields": fields}
    if indexed:
        out["index"] = int(words[3])
    return out


__all__ = ["Sender", "sender", "encode", "decode"]
