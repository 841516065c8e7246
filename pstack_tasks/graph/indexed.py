"""The v3 ``sendIndex`` of edges on indexed output pins: checked, or numbered in file order.

An indexed pin's OnSend picks one of its edges by number, so every edge of such a pin needs a
distinct number from 0 up.  graph-schema lets the file give them (``<EdgeI sendIndex=..>``);
shipped apps also leave them out, and then the edges count in the order they were written.
"""
from __future__ import annotations

from array import array
from collections.abc import Callable, Mapping, Sequence

from pstack_tasks.exceptions import GraphError
from pstack_tasks.graph.model import DeviceType

#: per (source device, output pin): [(sendIndex given or None, edge number, XML line)]
IndexedEdges = Mapping[tuple[int, int], Sequence[tuple["int | None", int, int]]]


def number_indexed_edges(edges: array[int], words: int, indexed: IndexedEdges, names: Sequence[str],
                         device_type_of: Callable[[int], DeviceType], file: str) -> None:
    """Write each indexed edge's sendIndex into word 5 of its record in ``edges``.

    Raises:
        GraphError: some edges of a pin have a sendIndex and some do not, two share one, or
            the numbers are not 0..n-1 (the message names the pin and the line).
    """
    for (src, spin), group in indexed.items():
        where = f"{names[src]}:{device_type_of(src).output_pins[spin].name}"
        given = [k for k, _, _ in group if k is not None]
        if not given:
            for n, (_, e, _) in enumerate(group):
                edges[e * words + 5] = n
            continue
        if len(given) != len(group):
            line = next(line for k, _, line in group if k is None)
            raise GraphError(f"indexed output pin {where}: some edges have a sendIndex and some do not; "
                             "give every edge one, or none (then they are numbered in file order)", file, line)
        seen: dict[int, int] = {}
        for k, _, line in group:
            assert k is not None
            if k in seen:
                raise GraphError(f"indexed output pin {where}: sendIndex {k} is used by two edges "
                                 f"(lines {seen[k]} and {line})", file, line)
            seen[k] = line
        if max(seen) != len(seen) - 1:
            missing = min(set(range(len(seen))) - set(seen))
            beyond = [line for k, line in seen.items() if k >= len(seen)]  # the edge to fix, if one is past n-1
            raise GraphError(f"indexed output pin {where} has {len(seen)} edges, but none with sendIndex "
                             f"{missing}: the indices must be 0..{len(seen) - 1}", file,
                             beyond[0] if beyond else max(seen.values()))
        for k, e, _ in group:  # written once checked: each fits the edge record's 32-bit word
            edges[e * words + 5] = k or 0
