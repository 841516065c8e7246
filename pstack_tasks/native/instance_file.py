"""The binary instance file an engine loads at start (format in docs/engine-protocol.md).

The instance is never compiled into the engine: the parsed application's packed arrays and
per-type byte strings are written out as they are, with the per-device regions, so one build
serves every instance of a graph type and every region map.
"""
from __future__ import annotations

import struct
from array import array
from typing import IO

from pstack_tasks.graph.application import Application, PackedBody

INSTANCE_MAGIC = b"PSTI"
INSTANCE_VERSION = 2


def write_instance(app: Application, out: IO[bytes], regions: array[int], type_hash: str) -> None:
    """Write the binary instance file the engine loads (docs/engine-protocol.md)."""
    inst, gt = app.instance, app.graph_type
    w = out.write
    w(INSTANCE_MAGIC)
    w(struct.pack("<I", INSTANCE_VERSION))
    w(type_hash.encode().ljust(64, b"\0")[:64])
    w(struct.pack("<IIII", inst.device_count, inst.edge_count, len(gt.device_types),
                       _graph_properties_size(app)))
    if inst.packed is None:
        w(inst.graph_properties)
    if inst.packed is not None:
        _write_packed(inst.packed, out, regions)
        return
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


def _write_packed(body: PackedBody, out: IO[bytes], regions: array[int]) -> None:
    """The native loader's body (graph properties, device types, names, ... edges) with the
    regions put in before the names, copied in chunks: never all in memory."""
    with open(body.path, "rb") as f:
        _copy(f, out, body.names_at)
        out.write(regions.tobytes())
        _copy(f, out, None)


def _copy(src: IO[bytes], out: IO[bytes], count: int | None, chunk: int = 1 << 22) -> None:
    """``count`` bytes (all the rest if None) from ``src`` to ``out``."""
    left = count
    while left is None or left > 0:
        data = src.read(chunk if left is None else min(chunk, left))
        if not data:
            break
        out.write(data)
        if left is not None:
            left -= len(data)


def _graph_properties_size(app: Application) -> int:
    return app.graph_type.properties.size if app.instance.packed is not None else len(app.instance.graph_properties)
