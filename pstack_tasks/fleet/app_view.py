"""A read-only view of a parsed application, the optional second argument of a checker.

A check that knows the application can compute what to expect instead of hard-coding it
("every device's counter equals its limit property", "the root's cycle equals the graph's
max_ticks").  The instance is kept packed (millions of devices cost bytes), so a device's
properties are unpacked only when a check asks for them.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

from pstack_tasks.graph.application import Application
from pstack_tasks.graph.values import Packer


class AppView:
    """What a checker may read of its application: devices, their types and properties.

    ``app.devices`` (ids in file order), ``app.type_of(d)``, ``app.devices_of(t)``,
    ``app.properties(d)``, ``app.initial_state(d)``, ``app.graph_properties``, ``app.graph_type``,
    ``app.instance``, ``app.file``, ``app.edges`` (count), ``len(app)``, ``d in app``.
    Every value it returns is a copy or read-only: a check cannot change what the next one sees.
    """

    def __init__(self, app: Application) -> None:
        self._app = app
        inst = app.instance
        self._types = tuple(d.id for d in app.graph_type.device_types)
        self._prop_packers = [Packer(d.properties) for d in app.graph_type.device_types]
        self._state_packers = [Packer(d.state) for d in app.graph_type.device_types]
        self._slot: list[int] | None = None  # each device's position among the devices of its type
        self.devices: tuple[str, ...] = tuple(inst.names)
        self.graph_type: str = app.graph_type.id
        self.instance: str = inst.id
        self.file: str = app.file
        self.edges: int = inst.edge_count
        self.graph_properties: Mapping[str, Any] = MappingProxyType(
            Packer(app.graph_type.properties).unpack(inst.graph_properties))

    def __len__(self) -> int:
        return len(self.devices)

    def __iter__(self) -> Iterator[str]:
        return iter(self.devices)

    def __contains__(self, device: object) -> bool:
        return device in self._app.instance.index

    def __repr__(self) -> str:
        return f"<application {self.graph_type}/{self.instance or '-'}: {len(self)} devices, {self.edges} edges>"

    def _index(self, device: str) -> int:
        i = self._app.instance.index.get(device)
        if i is None:
            raise KeyError(f"no device {device!r} in {self.file}")
        return i

    def type_of(self, device: str) -> str:
        """The device type id of ``device``."""
        return self._types[self._app.instance.dev_type[self._index(device)]]

    def devices_of(self, device_type: str) -> list[str]:
        """The ids of the devices of one type, in file order."""
        if device_type not in self._types:
            raise KeyError(f"no device type {device_type!r} in {self.file} (known: {', '.join(self._types)})")
        t = self._types.index(device_type)
        inst = self._app.instance
        return [name for name, dt in zip(inst.names, inst.dev_type) if dt == t]

    def _unpack(self, device: str, packers: list[Packer], data: list[bytearray]) -> dict[str, Any]:
        i = self._index(device)
        if self._slot is None:
            seen = [0] * len(self._types)
            slots = []
            for dt in self._app.instance.dev_type:
                slots.append(seen[dt])
                seen[dt] += 1
            self._slot = slots
        t, pos = self._app.instance.dev_type[i], self._slot[i]
        packer = packers[t]
        return packer.unpack(bytes(data[t][pos * packer.size:(pos + 1) * packer.size]))

    def properties(self, device: str) -> dict[str, Any]:
        """The device's property values (defaults filled in), as its handlers see them."""
        return self._unpack(device, self._prop_packers, self._app.instance.props)

    def initial_state(self, device: str) -> dict[str, Any]:
        """The device's state before it ran (the file's ``<S>`` over the defaults)."""
        return self._unpack(device, self._state_packers, self._app.instance.state)
