"""The binary instance file an engine loads at start (format in docs/engine-protocol.md).

The instance is never compiled into the engine: the parsed application's packed arrays and
per-type byte strings are written out as they are, with the per-device regions, so one build
serves every instance of a graph type and every region map.
"""
from __future__ import annotations

import struct
from array import array
from typing import IO

from pstack_tasks.graph.application import Application

INSTANCE_MAGIC = b"PSTI"
INSTANCE_VERSION = 2


def write_instance(app: Application, out: IO[bytes], regions: array[int], type_hash: str) -> None:
    """Write the binary instance file the engine loads (docs/engine-protocol.md)."""
    inst, gt = app.instance, app.graph_type
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
