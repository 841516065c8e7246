"""A parsed application: its graph type, its packed instance, and its devices' regions.

The instance is kept as flat arrays (device types, edges) and per-type byte strings (properties,
state), already in the engine's struct layout, so that millions of devices cost bytes, not
Python objects; ``native/instance_file.py`` writes it out for the engine as it is.
"""
from __future__ import annotations

import os
from array import array
from collections.abc import Mapping
from dataclasses import dataclass

from pstack_tasks.exceptions import GraphError
from pstack_tasks.graph.model import GraphType

#: words per edge record in :attr:`Instance.edges`: src, srcpin, dst, dstpin, eidx, sendIndex
EDGE_WORDS = 6
#: the sendIndex word of an edge on an output pin that is not indexed
NO_SEND_INDEX = 0xFFFFFFFF
#: devices + edges of the largest application a process keeps parsed between runs
KEEP_PARSED_MAX_SIZE = 100_000


@dataclass(frozen=True)
class PackedBody:
    """An instance packed by the native loader: a whole instance file (docs/engine-protocol.md),
    its type hash zero until a run puts in its engine's, every device in region 0; its names and
    edges are read only when asked for.

    ``regions_at`` is where the per-device regions are (the names follow them).
    """

    path: str
    device_count: int
    edge_count: int
    regions_at: int

    @property
    def names_at(self) -> int:
        return self.regions_at + 4 * self.device_count

    def names(self) -> list[str]:
        with open(self.path, "rb") as f:
            f.seek(self.names_at)
            size = int.from_bytes(f.read(4), "little")
            blob = f.read(size)
        return blob.decode().split("\0")[:-1] if blob else []

    def edges(self) -> array[int]:
        edges = array("I")
        with open(self.path, "rb") as f:
            f.seek(-4 * EDGE_WORDS * self.edge_count, os.SEEK_END)
            edges.frombytes(f.read())
        return edges


class Instance:
    """Devices and edges of one graph instance, packed for the engine.

    Built element by element by the Python loader, or backed by a :class:`PackedBody` from the
    native loader: then ``names``, ``index`` and ``edges`` are read from it only when asked for
    (a run in one region never asks: Python holds nothing per device).
    """

    def __init__(self, packed: PackedBody | None = None) -> None:
        self.id = ""
        self.packed = packed
        self._names: list[str] | None = None if packed else []
        self._index: dict[str, int] | None = None if packed else {}
        self._edges: array[int] | None = None if packed else array("I")  # EDGE_WORDS per edge
        self.dev_type: array[int] = array("H")
        self.props: list[bytearray] = []   # per device type, in device order
        self.state: list[bytearray] = []   # initial state, per device type
        self.counts: list[int] = []        # devices per type
        self.edge_props: dict[tuple[int, int], bytearray] = {}  # by (device type, input pin)
        self.edge_state: dict[tuple[int, int], bytearray] = {}
        self.edge_counts: dict[tuple[int, int], int] = {}
        self.graph_properties = b""

    @property
    def names(self) -> list[str]:
        """Device names in device order."""
        if self._names is None:
            assert self.packed is not None
            self._names = self.packed.names()
        return self._names

    @property
    def index(self) -> dict[str, int]:
        """Device number by name."""
        if self._index is None:
            self._index = {n: i for i, n in enumerate(self.names)}
        return self._index

    @property
    def edges(self) -> array[int]:
        """EDGE_WORDS words per edge: src, srcpin, dst, dstpin, eidx, sendIndex."""
        if self._edges is None:
            assert self.packed is not None
            self._edges = self.packed.edges()
        return self._edges

    @property
    def device_count(self) -> int:
        return self.packed.device_count if self.packed and self._names is None else len(self.names)

    @property
    def edge_count(self) -> int:
        return self.packed.edge_count if self.packed and self._edges is None else len(self.edges) // EDGE_WORDS


@dataclass
class Application:
    """A parsed application: the graph type (compiled) and its instance (loaded at run time)."""

    graph_type: GraphType
    instance: Instance
    file: str

    def worth_keeping(self) -> bool:
        """Small enough to keep parsed in a process for its next run (a big instance is cheap to
        read again beside its run time, and expensive to keep in every worker process)."""
        return self.instance.device_count + self.instance.edge_count <= KEEP_PARSED_MAX_SIZE


def region_array(inst: Instance, rmap: Mapping[str, int] | None,
                 file: str | None = None) -> tuple[array[int], list[int]]:
    """Per-device region numbers (unmapped devices are in region 0) and the sorted regions in use."""
    regions = array("I", bytes(4 * inst.device_count))
    used = {0} if inst.device_count else set()
    if rmap:
        for name, r in rmap.items():
            i = inst.index.get(name)
            if i is None:
                raise GraphError(f"region map names device {name!r}, which is not in the graph", file)
            if not isinstance(r, int) or isinstance(r, bool) or r < 0:
                raise GraphError(f"region map: device {name!r} has region {r!r}; regions are integers >= 0", file)
            regions[i] = r
        used = set(regions)
    return regions, sorted(used)
