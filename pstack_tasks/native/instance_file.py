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

from pstack_tasks.graph.application import Application, PackedBody
from pstack_tasks.graph.model import GraphType
from pstack_tasks.graph.overrides import Patch
from pstack_tasks.protocol import HEADER_BYTES, TYPE_HASH_AT, type_hash_field

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


def _write_packed(body: PackedBody, out: IO[bytes], regions: array[int], type_hash: str) -> None:
    """The native loader's instance file with this run's type hash and regions, copied in chunks
    (never all in memory)."""
    with open(body.path, "rb") as f:
        head = bytearray(f.read(body.regions_at))
        head[TYPE_HASH_AT:TYPE_HASH_AT + 64] = type_hash_field(type_hash)
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
    want = type_hash_field(type_hash)
    with open(body.path, "r+b") as f:
        f.seek(TYPE_HASH_AT)
        if f.read(64) != want:
            f.seek(TYPE_HASH_AT)
            f.write(want)
    return True


def patch_instance(f: IO[bytes], gt: GraphType, patch: Patch) -> None:
    """Apply a run's overrides (:mod:`pstack_tasks.graph.overrides`) to an instance file written
    by :func:`write_instance`, in place: ``f`` is open for reading and writing, at any position.

    Every section's place is read from the file itself (counts and the names' length), so this
    serves the Python loader's files and the native loader's alike.
    """
    if not patch:
        return
    f.seek(HEADER_BYTES - 16)
    devices, _edges, ntypes, gpsize = struct.unpack("<IIII", f.read(16))
    for w in patch.writes:
        if w.section == "graph":
            f.seek(HEADER_BYTES + w.offset)
            f.write(w.data)
            continue
        start, count, psize, ssize = _type_section(f, gt, devices, gpsize, w.type_index)
        at = start + (0 if w.section == "props" else count * psize)
        size = psize if w.section == "props" else ssize
        if w.device is not None:
            f.seek(at + _position_in_type(f, gpsize, w.device, w.type_index) * size + w.offset)
            f.write(w.data)
            continue
        f.seek(at)
        block = bytearray(f.read(count * size))
        for k, byte in enumerate(w.data):  # one strided store per byte of the member: every record at once
            block[w.offset + k::size] = bytes([byte]) * count
        f.seek(at)
        f.write(block)


def _type_section(f: IO[bytes], gt: GraphType, devices: int, gpsize: int, t: int) -> tuple[int, int, int, int]:
    """(where its properties start, its device count, property size, state size) of device type ``t``."""
    f.seek(HEADER_BYTES + gpsize + 8 * devices)
    at = HEADER_BYTES + gpsize + 8 * devices + 4 + struct.unpack("<I", f.read(4))[0]
    for i, d in enumerate(gt.device_types):
        f.seek(at)
        count = struct.unpack("<I", f.read(4))[0]
        psize, ssize = d.properties.size, d.state.size
        if i == t:
            return at + 4, count, psize, ssize
        at += 4 + count * (psize + ssize)
    raise IndexError(t)


def _position_in_type(f: IO[bytes], gpsize: int, device: int, t: int) -> int:
    """Device number ``device``'s place among the devices of its type (the records' order)."""
    f.seek(HEADER_BYTES + gpsize)
    types = array("I")
    types.frombytes(f.read(4 * device))
    return types.tolist().count(t)
