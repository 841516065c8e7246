"""A parsed application: its graph type, its packed instance, and its devices' regions.

The instance is kept as flat arrays (device types, edges) and per-type byte strings (properties,
state), already in the engine's struct layout, so that millions of devices cost bytes, not
Python objects; ``native/instance_file.py`` writes it out for the engine as it is.
"""
from __future__ import annotations

from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field

from pstack_tasks.exceptions import GraphError
from pstack_tasks.graph.model import GraphType

#: words per edge record in :attr:`Instance.edges`: src, srcpin, dst, dstpin, eidx, sendIndex
EDGE_WORDS = 6
#: the sendIndex word of an edge on an output pin that is not indexed
NO_SEND_INDEX = 0xFFFFFFFF
#: devices + edges of the largest application a process keeps parsed between runs
KEEP_PARSED_MAX_SIZE = 100_000


@dataclass
class Instance:
    """Devices and edges of one graph instance, packed for the engine."""

    id: str = ""
    names: list[str] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)
    dev_type: array[int] = field(default_factory=lambda: array("H"))
    props: list[bytearray] = field(default_factory=list)   # per device type, in device order
    state: list[bytearray] = field(default_factory=list)   # initial state, per device type
    counts: list[int] = field(default_factory=list)        # devices per type
    edges: array[int] = field(default_factory=lambda: array("I"))  # EDGE_WORDS per edge
    edge_props: dict[tuple[int, int], bytearray] = field(default_factory=dict)  # by (device type, input pin)
    edge_state: dict[tuple[int, int], bytearray] = field(default_factory=dict)
    edge_counts: dict[tuple[int, int], int] = field(default_factory=dict)
    graph_properties: bytes = b""

    @property
    def device_count(self) -> int:
        return len(self.names)

    @property
    def edge_count(self) -> int:
        return len(self.edges) // EDGE_WORDS


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
