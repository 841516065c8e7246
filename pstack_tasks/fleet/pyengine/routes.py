"""The graph as one Python engine sees it: which edges leave each ``(device, output pin)``,
which of their destinations are its own and which regions hold the others, and its devices'
initial states, read from the parsed application and its region array.
"""
from __future__ import annotations

from array import array
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from pstack_tasks.exceptions import ConfigurationError
from pstack_tasks.graph.application import EDGE_WORDS
from pstack_tasks.graph.loader import Application
from pstack_tasks.graph.model import DeviceType
from pstack_tasks.graph.values import Packer
from pstack_tasks.native.items import PayloadCodec

NO_INDEX = 0xFFFFFFFF


@dataclass(frozen=True)
class Edge:
    """One edge leaving a ``(device, output pin)``: its destination and its send index."""

    dst: int
    dst_pin: int
    send_index: int


class Routes:
    """Edges, regions and payload codecs of one application split by ``regions`` (each device's
    region), seen from region ``region``."""

    def __init__(self, app: Application, regions: array[int], region: int) -> None:
        self.app, self.region = app, region
        gt, inst = app.graph_type, app.instance
        self.names, self.index = inst.names, inst.index
        self.types: list[DeviceType] = [gt.device_types[t] for t in inst.dev_type]
        self.device_region = regions
        self.out: dict[tuple[int, int], list[Edge]] = defaultdict(list)
        edges = inst.edges
        for e in range(0, len(edges), EDGE_WORDS):
            src, spin, dst, dpin, _, send_index = edges[e:e + EDGE_WORDS]
            self.out[(src, spin)].append(Edge(dst, dpin, send_index))
        self.codecs = {m.id: PayloadCodec(m.payload) for m in gt.message_types}
        self.local = [d for d in range(len(self.names)) if regions[d] == region]

    def device(self, name: str) -> int:
        """A device's number; ConfigurationError naming it if there is none."""
        try:
            return self.index[name]
        except KeyError:
            raise ConfigurationError(f"no device {name!r} in {self.app.file}") from None

    def output(self, device: int, pin: str) -> int:
        """The number of ``device``'s output pin ``pin``; ConfigurationError naming both if none."""
        for i, p in enumerate(self.types[device].output_pins):
            if p.name == pin:
                return i
        raise ConfigurationError(f"device {self.names[device]!r} ({self.types[device].id}) has no output pin {pin!r}")

    def message_type(self, device: int, port: int) -> str:
        """The message type sent on ``device``'s output ``port``."""
        return self.types[device].output_pins[port].message_type

    def remote_regions(self, device: int, port: int) -> list[int]:
        """The other regions holding a destination of ``(device, port)``, in order."""
        return sorted({self.device_region[e.dst] for e in self.out[(device, port)]} - {self.region})

    def local_edges(self, device: int, port: int, index: int = -1) -> list[Edge]:
        """The destinations of ``(device, port)`` in this region (only edge ``index`` if given)."""
        edges = self.out[(device, port)]
        if index >= 0:
            edges = [e for e in edges if e.send_index == index]
        return [e for e in edges if self.device_region[e.dst] == self.region]

    def initial_states(self) -> dict[str, dict[str, Any]]:
        """This region's devices' initial states (``{member: value}``), from the instance."""
        inst, gt = self.app.instance, self.app.graph_type
        packers = [Packer(d.state) for d in gt.device_types]
        position: list[int] = [0] * len(gt.device_types)
        out = {}
        for d, t in enumerate(inst.dev_type):
            k, position[t] = position[t], position[t] + 1
            if self.device_region[d] != self.region:
                continue
            size = packers[t].size
            out[self.names[d]] = packers[t].unpack(bytes(inst.state[t][k * size:(k + 1) * size]))
        return out


__all__ = ["Edge", "Routes"]
