"""Regions a client serves itself (``rcon={region: Engine(handler)}``): what such a server must
offer, and which splits it can serve (fleet/pyengine has the engine; this is what submission
checks before anything is queued)."""
from __future__ import annotations

from array import array
from collections.abc import Mapping
from typing import Protocol

from pstack_tasks.exceptions import ConfigurationError
from pstack_tasks.graph.loader import Application


class RegionServer(Protocol):
    """Serves one region of a process from the client (``pstack_tasks.Engine``)."""

    def attach(self, pid: int, app: Application, regions: array[int], region: int, all_regions: list[int]) -> None:
        """Serve ``region`` of process ``pid``; ``regions``: each device's region."""


#: ``rcon``: each region's worker (a host name) or client engine
Rcon = Mapping[int | str, "str | RegionServer"]


def check_served(app: Application, regions: array[int], served: Mapping[int, object], fleet: list[int]) -> None:
    """Refuse, in one line, a split a client cannot serve: a server that is no engine, no region
    left for the fleet, or external devices in a region the fleet would run."""
    for region, server in served.items():
        if not callable(getattr(server, "attach", None)):
            raise ConfigurationError(f"rcon gives region {region} {server!r}: a worker name (str) or an Engine")
    if served and not fleet:
        raise ConfigurationError("every region is served by a Python engine: leave at least one to the fleet")
    externals = external_devices(app, regions, fleet)
    if externals:
        shown = ", ".join(externals[:5]) + (", ..." if len(externals) > 5 else "")
        raise ConfigurationError(f"external devices {shown} are in a region the fleet runs: a region holding "
                                 "externals must be served by a Python engine (rcon={region: Engine(handler)})")


def external_devices(app: Application, regions: array[int], among: list[int]) -> list[str]:
    """The external devices (graph-schema ``ExtI``) in the regions ``among``, in device order."""
    external = {i for i, d in enumerate(app.graph_type.device_types) if getattr(d, "external", False)}
    if not external:
        return []
    inst, wanted = app.instance, set(among)
    return [inst.names[d] for d, t in enumerate(inst.dev_type) if t in external and regions[d] in wanted]


__all__ = ["Rcon", "RegionServer", "check_served", "external_devices"]
