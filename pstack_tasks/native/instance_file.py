"""The binary instance file an engine loads at start (format in docs/engine-protocol.md).

The instance is never compiled into the engine: the parsed application's packed arrays and
per-type byte strings are written out as they are, with the per-device regions, so one build
serves every instance of a graph type and every region map.
"""
from __future__ import annotations

import shutil
import struct
from array import array
from typing import IO

from pstack_tasks.graph.application import TYPE_HASH_AT, Application, PackedBody

INSTANCE_MAGIC = b"PSTI"
INSTANCE_VERSION = 2


def write_instance(app: Application, out: IO[bytes], regions: array[int], type_hash: str) -> None:
    """Write the binary instance file the engine loads (docs/engine-protocol.md)."""
    inst, gt = app.instance, app.graph_type
    if inst.packed is not None:
        _write_packed(inst.packed, out, regions, type_hash)
        return
    w = out.write
    w(INSTANCE_MAGIC)
    w(struct.pack("<I", INSTANCE_VERSION))
    w(type_hash.encode().ljust(64, b"\0")[:64])
    w(struct.pack("<IIII", inst.device_count, inst.edge_count, len(gt.device_types), len(inst.graph_properties)))
    w(inst.graph_properties)
    w(array("I", inst.dev_type).tobytes())
    w(regions.tobytes())
    blob = ("\0".join(inst.names) + "\0").encode() if inst.names else b""
    w(struct.pack("<I", len(blob)))
    w(blob)
    for t, _ in enumerate(gt.device_types):
        w(struct.pack("<I", inst.counts[t]))
        w(inst.props[t])
        w(inst.state[t])
    for t, d in enumerate(gt.device_types):
        for i, _ in enumerate(d.input_pins):
            key = (t, i)
            w(struct.pack("<I", inst.edge_counts.get(key, 0)))
            w(inst.edge_props.get(key, b""))
            w(inst.edge_state.get(key, b""))
    w(inst.edges.tobytes())


def _type_hash_bytes(type_hash: str) -> bytes:
    return type_hash.encode().ljust(64, b"\0")[:64]


def _write_packed(body: PackedBody, out: IO[bytes], regions: array[int], type_hash: str) -> None:
    """The native loader's instance file with this run's type hash and regions, copied in chunks
    (never all in memory)."""
    with open(body.path, "rb") as f:
        head = bytearray(f.read(body.regions_at))
        head[TYPE_HASH_AT:TYPE_HASH_AT + 64] = _type_hash_bytes(type_hash)
        out.write(head)
        out.write(regions.tobytes())
        f.seek(body.names_at)
        shutil.copyfileobj(f, out, 1 << 22)


def packed_in_place(body: PackedBody, regions: array[int], type_hash: str) -> bool:
    """Whether the native loader's file can be given to the engine as it is: every device in
    region 0 (one region); its type hash is put in when it is not this engine's (a cache entry
    is used by one engine build at a time)."""
    if any(regions):
        return False
    want = _type_hash_bytes(type_hash)
    with open(body.path, "r+b") as f:
        f.seek(TYPE_HASH_AT)
        if f.read(64) != want:
            f.seek(TYPE_HASH_AT)
            f.write(want)
    return True
