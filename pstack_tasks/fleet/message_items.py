"""Message items as engines write them into a region's queue, resolved against an application.

An item is ``0 <device> <pin> <nfields> <f1> ... <fn>`` (docs/engine-protocol.md, "Items and
queues"): the sending device's number, its output pin's position, and the payload's scalars in
declaration order.  ``inspect`` decodes the items waiting in a running process's queues with the
graph type's message layouts; ``inject`` encodes one as the engine itself would, so the receiving
engine cannot tell it from a message sent by another region.  The text itself is
:mod:`pstack_tasks.native.items`'s codec (the Python engine's too); this module names devices, pins
and fields, and says what is wrong in the user's terms.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from pstack_tasks.exceptions import ConfigurationError
from pstack_tasks.graph.application import Application
from pstack_tasks.graph.model import OutputPin, Struct
from pstack_tasks.graph.values import ValueError_
from pstack_tasks.native.items import PayloadCodec, message_item, parse_item
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
    try:
        words = PayloadCodec(s.payload).encode(dict(fields))
    except ValueError_ as e:
        raise ConfigurationError(f"message {s.pin.message_type!r}: {e}") from None
    return message_item(s.device, s.pin_index, words)


def decode(app: Application, text: str) -> dict[str, Any]:
    """An item as a dict: ``{"kind": "message", "src": device, "pin": name, "fields": {...}}`` for
    a message (``"index"`` too for an indexed send), ``{"kind": "stop"|"quiescent"|..., "text"}``
    for a control item, ``{"kind": "unreadable", "text"}`` for anything else."""
    try:
        item = parse_item(text)
        if item.kind not in (ItemKind.MESSAGE, ItemKind.INDEXED_MESSAGE):
            return {"kind": _CONTROL[item.kind], "text": text}
        s = sender(app, item.device, item.port)
        out: dict[str, Any] = {"kind": "message", "src": s.name, "pin": s.pin.name, "type": s.pin.message_type,
                               "fields": PayloadCodec(s.payload).decode(item.fields)}
    except (ValueError, IndexError, KeyError, ConfigurationError, struct.error):
        return {"kind": "unreadable", "text": text}
    if item.index >= 0:
        out["index"] = item.index
    return out


__all__ = ["Sender", "sender", "encode", "decode"]
