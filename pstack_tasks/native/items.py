"""Items on the wire as Python reads and writes them: the text the C++ engine pushes to a region's
queue (docs/engine-protocol.md, "Items and queues": ``0 <device> <port> <nfields> <f1> ... <fn>``).

A message's fields are its payload's scalars in declaration order, arrays flattened: the same
flat list :class:`~pstack_tasks.graph.values.Packer` packs, so payloads are encoded through the
graph type's own layout (integers in decimal; ``float`` with 9 and ``double`` with 17 significant
digits, which read back to the same bits).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pstack_tasks.graph.model import Struct
from pstack_tasks.graph.values import Packer
from pstack_tasks.protocol import ItemKind


@dataclass(frozen=True)
class Item:
    """One item read from a queue: its kind, and for messages the sender, pin and flat fields."""

    kind: str
    device: int = -1
    port: int = -1
    index: int = -1  #: the edge of an indexed send (kind INDEXED_MESSAGE), else -1
    fields: tuple[str, ...] = ()
    code: int = 0  #: the exit code of a STOP item


class PayloadCodec:
    """A message type's payload to and from the item's field text."""

    def __init__(self, payload: Struct) -> None:
        self.packer = Packer(payload)
        self.floats = [s.is_float for s in self.packer.scalars]
        self.single = [s.ctype == "float" for s in self.packer.scalars]

    def encode(self, values: dict[str, Any] | None) -> list[str]:
        """The field words of a payload given as ``{member: value}`` (others keep their defaults)."""
        flat = self.packer.struct.unpack(self.packer.pack(values)) if self.floats else ()
        out = []
        for v, is_float, single in zip(flat, self.floats, self.single):
            out.append(("%.9g" if single else "%.17g") % v if is_float else str(int(v)))
        return out

    def decode(self, words: tuple[str, ...]) -> dict[str, Any]:
        """The payload ``{member: value}`` of an item's field words."""
        if len(words) != len(self.floats):
            raise ValueError(f"a message of {len(self.floats)} fields arrived with {len(words)}")
        flat = [float(w) if f else int(w) for w, f in zip(words, self.floats)]
        return self.packer.unpack(self.packer.struct.pack(*flat)) if flat else {}


def message_item(device: int, port: int, fields: list[str], index: int | None = None) -> str:
    """The item of a send by ``device`` on output ``port`` (over edge ``index`` of an indexed pin)."""
    if index is None:
        return " ".join([ItemKind.MESSAGE, str(device), str(port), str(len(fields)), *fields])
    return " ".join([ItemKind.INDEXED_MESSAGE, str(device), str(port), str(index), str(len(fields)), *fields])


def parse_item(text: str) -> Item:
    """An item read from a queue; ValueError for a malformed one."""
    words = text.split()
    if not words:
        raise ValueError("an empty item")
    kind = words[0]
    if kind == ItemKind.MESSAGE:
        device, port, n = int(words[1]), int(words[2]), int(words[3])
        _check_count(words, 4, n)
        return Item(kind, device, port, -1, tuple(words[4:]))
    if kind == ItemKind.INDEXED_MESSAGE:
        device, port, index, n = int(words[1]), int(words[2]), int(words[3]), int(words[4])
        _check_count(words, 5, n)
        return Item(kind, device, port, index, tuple(words[5:]))
    if kind == ItemKind.STOP:
        return Item(kind, code=int(words[1]) if len(words) > 1 else 0)
    if kind in (ItemKind.QUIESCENT, ItemKind.HARDWARE_IDLE):
        return Item(kind)
    raise ValueError(f"an item of unknown kind {kind!r}")


def _check_count(words: list[str], at: int, n: int) -> None:
    if len(words) - at != n:
        raise ValueError(f"an item that says {n} fields and has {len(words) - at}")


def unpack(elements: list[str]) -> list[str]:
    """The items of queue elements, in order: native engines pack many items into one element,
    newline-separated (docs/engine-protocol.md, "Items and queues")."""
    return [item for element in elements for item in element.split("\n") if item]


__all__ = ["Item", "PayloadCodec", "message_item", "parse_item", "unpack"]
