"""Splitting an instance into K regions: METIS's balanced minimum cut, and the naive splits it is
measured against (round-robin, contiguous ids).

A region boundary costs a remote item (text through socat and Redis) per message that crosses
it, where a local delivery costs a few nanoseconds; so the split that pays keeps the remote
items few and the regions equal.  The engine sends one remote item per (source pin, remote
region), however many of the pin's destinations are there: an edge of a pin with F
destinations is weighted 1/F (scaled to integers), so cutting all of a broadcast pin counts as
one item, as it costs.  METIS is seeded, so the same instance gives the same split in every
process (the engines of a fleet each compute it and must agree).

Pure: arrays in, arrays out; pymetis is imported only when a METIS split is computed.
"""
from __future__ import annotations

import time
from array import array
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from pstack_tasks.exceptions import ConfigurationError
from pstack_tasks.graph.application import EDGE_WORDS, Instance

#: bumped whenever the split computed for an instance changes (it keys the split cache)
ALGORITHM_VERSION = 1
#: the split methods, the first being what ``regions=K`` uses
METHODS = ("metis", "round-robin", "contiguous")
#: the weight of an edge of a pin with one destination (a pin with F has SCALE // F, at least 1)
SCALE = 60
#: METIS's imbalance allowance, in thousandths over the mean (30: largest part <= 1.03 x mean)
UFACTOR = 30
#: a hub has more than HUB_FACTOR x the mean edge count, and more than HUB_MIN edges
HUB_FACTOR = 50
HUB_MIN = 256
#: METIS's random seed: fixed, so every process computes the same split
SEED = 17
#: the prefix of an automatic region map given as text: ``rmap="auto:4"``
AUTO_PREFIX = "auto:"


@dataclass(frozen=True)
class PartitionReport:
    """What a split gives: its cut (remote edges / all edges) and balance (largest region / mean)."""

    regions: int
    method: str
    cut_edges: int
    edges: int
    balance: float
    seconds: float
    cached: bool = False

    @property
    def cut(self) -> float:
        return self.cut_edges / self.edges if self.edges else 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(asdict(self), cut=round(self.cut, 6))

    def describe(self) -> str:
        """One line for a user: ``2 regions (metis, 0.41 s): cut 600/179400 edges (0.33%), balance 1.000``."""
        return split_line(self.as_dict())


def split_line(report: Mapping[str, Any]) -> str:
    """A split's report (:meth:`PartitionReport.as_dict`, as results carry it) as one line."""
    how = "cached" if report["cached"] else f"{report['seconds']:.2f} s"
    edges = report["edges"]
    cut = 100 * report["cut_edges"] / edges if edges else 0.0
    return (f"{report['regions']} regions ({report['method']}, {how}): cut {report['cut_edges']}/{edges} edges "
            f"({cut:.2f}%), balance {report['balance']:.3f}")


def region_count(value: object, what: str = "regions") -> int:
    """K checked: an integer >= 1 (``what`` names it in the error)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{what} must be an integer >= 1, not {value!r}")
    return value


def auto_regions(rmap: object) -> int | None:
    """K of an automatic region map (``"auto:K"``), or None for anything else."""
    if not isinstance(rmap, str):
        return None
    if not rmap.startswith(AUTO_PREFIX):
        raise ConfigurationError(f"region map {rmap!r}: a text region map is 'auto:K' (K regions, split by METIS)")
    k = rmap[len(AUTO_PREFIX):]
    if not k.strip().isdigit():
        raise ConfigurationError(f"region map {rmap!r}: K in 'auto:K' must be an integer >= 1")
    return region_count(int(k), f"region map {rmap!r}: K")


def combine(rmap: Mapping[str, int] | str | None, regions: int | None) -> Mapping[str, int] | str | None:
    """One region map from ``rmap`` and ``regions``: ``regions=K`` is ``rmap="auto:K"``.

    Both at once is refused: which one was meant is not for the stack to guess.
    """
    if regions is None:
        return rmap
    k = region_count(regions)
    if rmap:
        raise ConfigurationError("give a region map (rmap) or a number of regions (regions), not both")
    return f"{AUTO_PREFIX}{k}"


def split(inst: Instance, k: int, method: str = "metis",
          device_weights: str = "ones") -> tuple[array[int], PartitionReport]:
    """The region of each device (``array('I')``, as ``region_array``) in a ``k``-way split.

    ``device_weights``: ``"ones"`` balances device counts, ``"degree"`` balances edges (each
    device weighs 1 + its edge count).
    """
    n = inst.device_count
    region_count(k)
    if k > max(n, 1):
        raise ConfigurationError(f"{k} regions asked for, but the graph has only {n} devices")
    start = time.perf_counter()
    if k == 1 or n == 0:
        parts = array("I", bytes(4 * n))
    elif method == "round-robin":
        parts = round_robin(n, k)
    elif method == "contiguous":
        parts = contiguous(n, k)
    elif method == "metis":
        parts = metis(inst, k, device_weights)
    else:
        raise ConfigurationError(f"unknown split method {method!r}; known: {', '.join(METHODS)}")
    seconds = time.perf_counter() - start
    return parts, measure(inst, parts, k, method, seconds)


def round_robin(n: int, k: int) -> array[int]:
    """Device i in region i mod k: balanced, and blind to the edges."""
    return array("I", (i % k for i in range(n)))


def contiguous(n: int, k: int) -> array[int]:
    """Devices in file order, cut into k runs of (nearly) equal length."""
    return array("I", (i * k // n for i in range(n)))


def measure(inst: Instance, parts: array[int], k: int, method: str = "given", seconds: float = 0.0) -> PartitionReport:
    """The cut and balance of a split."""
    e = inst.edges
    cut = sum(1 for i in range(0, len(e), EDGE_WORDS) if parts[e[i]] != parts[e[i + 2]])
    sizes = [0] * k
    for r in parts:
        sizes[r] += 1
    mean = len(parts) / k if k else 0.0
    balance = max(sizes) / mean if mean else 1.0
    return PartitionReport(k, method, cut, inst.edge_count, round(balance, 4), round(seconds, 4))


def metis(inst: Instance, k: int, device_weights: str = "ones") -> array[int]:
    """METIS's k-way split of the instance's undirected, fan-out weighted device graph.

    Hubs (a device with far more edges than the rest: an exit node every cell reports to) are
    left out of the graph METIS sees, which would otherwise bend the whole split around them,
    and then put in the region holding most of their neighbours.
    """
    import pymetis  # only here: the import costs time every other run does not need

    degree = _degrees(inst)
    hubs = _hubs(degree)
    xadj, adjncy, eweights = _weighted_graph(inst, hubs)
    if not adjncy:
        return contiguous(inst.device_count, k)
    vweights = [1 + d for d in degree] if device_weights == "degree" else None
    options = pymetis.Options(seed=SEED, ufactor=UFACTOR, contig=0)
    _, membership = pymetis.part_graph(k, pymetis.CSRAdjacency(xadj, adjncy), eweights=eweights,
                                       vweights=vweights, options=options)
    parts = array("I", membership)
    _place_hubs(inst, parts, hubs, k)
    return parts


def _degrees(inst: Instance) -> list[int]:
    """Each device's edge count, in and out."""
    e, degree = inst.edges, [0] * inst.device_count
    for i in range(0, len(e), EDGE_WORDS):
        degree[e[i]] += 1
        degree[e[i + 2]] += 1
    return degree


def _hubs(degree: list[int]) -> set[int]:
    """Devices with more than HUB_FACTOR times the mean edge count (and more than HUB_MIN)."""
    if not degree:
        return set()
    limit = max(HUB_MIN, HUB_FACTOR * sum(degree) / len(degree))
    return {d for d, n in enumerate(degree) if n > limit}


def _place_hubs(inst: Instance, parts: array[int], hubs: set[int], k: int) -> None:
    """Each hub into the region where most of its neighbours are (the lowest such region)."""
    if not hubs:
        return
    votes = {h: [0] * k for h in hubs}
    e = inst.edges
    for i in range(0, len(e), EDGE_WORDS):
        src, dst = e[i], e[i + 2]
        if src in votes and dst not in hubs:
            votes[src][parts[dst]] += 1
        if dst in votes and src not in hubs:
            votes[dst][parts[src]] += 1
    for h, v in votes.items():
        parts[h] = v.index(max(v))


def _weighted_graph(inst: Instance, hubs: set[int]) -> tuple[list[int], list[int], list[int]]:
    """CSR of the device graph without the hubs' edges (both directions, no self-loops,
    parallel edges merged) and the weight of each entry: the sum of its edges' SCALE // fan-out."""
    e, n = inst.edges, inst.device_count
    fanout: dict[tuple[int, int], int] = {}
    for i in range(0, len(e), EDGE_WORDS):
        pin = (e[i], e[i + 1])
        fanout[pin] = fanout.get(pin, 0) + 1
    pairs: dict[tuple[int, int], int] = {}
    for i in range(0, len(e), EDGE_WORDS):
        src, dst = e[i], e[i + 2]
        if src == dst or src in hubs or dst in hubs:
            continue
        key = (src, dst) if src < dst else (dst, src)
        pairs[key] = pairs.get(key, 0) + max(1, SCALE // fanout[(src, e[i + 1])])
    neighbours: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    for (a, b), w in pairs.items():
        neighbours[a].append((b, w))
        neighbours[b].append((a, w))
    xadj, adjncy, weights = [0], list[int](), list[int]()
    for row in neighbours:
        row.sort()
        adjncy.extend(b for b, _ in row)
        weights.extend(w for _, w in row)
        xadj.append(len(adjncy))
    return xadj, adjncy, weights


__all__ = ["PartitionReport", "split", "measure", "metis", "round_robin", "contiguous", "auto_regions",
           "combine", "region_count", "split_line", "METHODS", "ALGORITHM_VERSION"]
