"""A region's dump, as its engine writes it while paused for a snapshot (the layout is described at
the top of engines/psim/runtime/pstack_snapshot.hpp), read back in Python.

Only what a snapshot shows is decoded here (counters, held elements, the JSON metrics and
states); the device and edge state arrays stay bytes: a resumed engine reads them itself.
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

from pstack_tasks.exceptions import ProcessError

MAGIC = b"PSNP"
VERSION = 2
_HEAD = struct.Struct("<4s6I7QII")
#: the supervisor's part of a dump: none (or not in this region), its state as bytes, not plain data
SUPERVISOR_NONE, SUPERVISOR_COPIED, SUPERVISOR_NOT_PLAIN = 0, 1, 2
#: the engine's counters in the dump's header, in order
COUNTERS = ("delivered", "sent", "cancelled", "steps", "remote_sent", "remote_received", "idle_rounds")


@dataclass(frozen=True)
class Dump:
    """One region's part of a snapshot."""

    region: int
    counters: dict[str, int]
    ready: int                  #: devices ready to send when it paused
    held: list[bytes]           #: queue elements it had popped after the request (not yet handled)
    result: dict[str, Any]      #: ``{"metrics": {...}, "states": {...}}`` as its final result would show them
    raw: bytes                  #: the whole dump, for a checkpoint
    supervisor: int = SUPERVISOR_NONE  #: the v4 supervisor's state here: SUPERVISOR_COPIED or _NOT_PLAIN
    idle_consecutive: int = 0   #: one region: OnHardwareIdle rounds in a row that woke nothing


def read_dump(raw: bytes, pid: int, region: int) -> Dump:
    """The dump region ``region`` of process ``pid`` wrote; one clear error if it is not one."""
    if len(raw) < _HEAD.size or raw[:4] != MAGIC:
        raise ProcessError(f"process {pid}: region {region} wrote a snapshot that is not one (engine too old?)")
    magic, version, reg, ndev, ntypes, ninputs, ready, *rest = _HEAD.unpack_from(raw, 0)
    if version != VERSION:
        raise ProcessError(f"process {pid}: region {region} wrote a snapshot of version {version}, not {VERSION}")
    counters = dict(zip(COUNTERS, rest[:7]))
    off = _HEAD.size + 4 * ndev
    for _ in range(ntypes + ninputs):
        count, size = struct.unpack_from("<II", raw, off)
        off += 8 + count * size
    supervisor, size = struct.unpack_from("<II", raw, off)
    off += 8 + size + 16
    held, off = _elements(raw, off)
    (n,) = struct.unpack_from("<I", raw, off)
    result = json.loads(raw[off + 4:off + 4 + n])
    return Dump(region=reg, counters=counters, ready=ready, held=held, result=result, raw=raw,
                supervisor=supervisor, idle_consecutive=rest[8])


def _elements(raw: bytes, off: int) -> tuple[list[bytes], int]:
    (n,) = struct.unpack_from("<I", raw, off)
    off += 4
    out = []
    for _ in range(n):
        (length,) = struct.unpack_from("<I", raw, off)
        out.append(raw[off + 4:off + 4 + length])
        off += 4 + length
    return out, off


def items_of(elements: list[bytes]) -> list[str]:
    """The items of queue elements (each element packs one or more, newline-separated)."""
    return [item for e in elements for item in e.decode().split("\n") if item]


__all__ = ["Dump", "read_dump", "items_of", "COUNTERS", "SUPERVISOR_NONE", "SUPERVISOR_COPIED", "SUPERVISOR_NOT_PLAIN"]
