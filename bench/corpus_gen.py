#!/usr/bin/env python3
"""Bigger instances of three POETS corpus apps, for throughput measurements.

The corpus files (graph-schema v3, from POETSII/graph_schema) are small; these generators keep
each app's ``<GraphType>`` verbatim and write a new ``<GraphInstance>`` of any size, built the
way the corpus instances are built:

* ``clock_tree``: a ``fanout``-ary tree of the given ``depth``; the root ticks ``max_ticks``
  times, every tick goes down the tree and an ack comes back up.
* ``ising_spin_fix``: a ``width`` x ``height`` torus of cells, run until ``endTime``, reporting to
  one exit node.  ``ref_final_spin`` is 0, which the app reads as "no reference": it succeeds.
* ``apsp``: ``nodes`` (a power of 2) nodes, each with ``degree`` random weighted in- and out-edges
  (``degree`` random permutations), a binary control tree and the controller; one BFS round per
  node.  ``refSum*`` are 0 (no reference).

    python bench/corpus_gen.py clock_tree 6 4 1000 > clock.xml
"""
from __future__ import annotations

import argparse
import random
import re
import sys
from pathlib import Path
from typing import IO

CORPUS = Path("/work/shared/data/poets-corpus")
V3 = "https://poets-project.org/schemas/virtual-graph-schema-v3"


def graph_type(corpus_file: Path) -> str:
    """The ``<GraphType>`` element of a corpus file, as text."""
    text = corpus_file.read_text()
    m = re.search(r"<GraphType\b.*?</GraphType>", text, re.S)
    if not m:
        raise SystemExit(f"{corpus_file}: no <GraphType>")
    return m.group(0)


def _doc(out: IO[str], corpus_file: Path, inst_id: str, gid: str, props: str, devices: list[str],
         edges: list[str]) -> None:
    out.write(f'<?xml version="1.0"?>\n<Graphs xmlns="{V3}">\n{graph_type(corpus_file)}\n')
    out.write(f' <GraphInstance id="{inst_id}" graphTypeId="{gid}">\n')
    if props:
        out.write(f"  <Properties>{props}</Properties>\n")
    out.write("  <DeviceInstances>\n")
    out.writelines(f"   {d}\n" for d in devices)
    out.write("  </DeviceInstances>\n  <EdgeInstances>\n")
    out.writelines(f"   {e}\n" for e in edges)
    out.write("  </EdgeInstances>\n </GraphInstance>\n</Graphs>\n")


def clock_tree(out: IO[str], depth: int, fanout: int, max_ticks: int) -> None:
    devices = [f'<DevI id="root" type="root"><P>"fanout": {fanout}</P></DevI>']
    edges: list[str] = []

    def grow(parent: str, level: int) -> None:
        for i in range(fanout):
            child = f"{parent}_{i}"
            if level == depth:
                child += "_leaf"
                devices.append(f'<DevI id="{child}" type="leaf"/>')
            else:
                devices.append(f'<DevI id="{child}" type="branch"><P>"fanout": {fanout}</P></DevI>')
            edges.append(f'<EdgeI path="{child}:tick_in-{parent}:tick_out"/>')
            edges.append(f'<EdgeI path="{parent}:ack_in-{child}:ack_out"/>')
            if level < depth:
                grow(child, level + 1)
    grow("root", 1)
    _doc(out, CORPUS / "clock_tree_3_2_10.xml", f"clock_{depth}_{fanout}", "clock_tree",
         f'"max_ticks": {max_ticks}', devices, edges)


def ising_spin_fix(out: IO[str], width: int, height: int, end_time: int) -> None:
    text = (CORPUS / "ising_spin_fix_3_1.xml").read_text()
    probs = re.search(r'"probabilities":\s*(\[[^\]]*\])', text)
    assert probs, "ising_spin_fix_3_1.xml: no probabilities"
    props = (f'"endTime": {end_time}, "width": {width}, "height": {height}, '
             f'"probabilities": {" ".join(probs.group(1).split())}')
    devices = [f'<DevI id="n_{x}_{y}" type="cell"><P>"x": {x}, "y": {y}, "ref_final_spin": 0</P></DevI>'
               for x in range(width) for y in range(height)]
    devices.append(f'<DevI id="f" type="exit_node"><P>"fanin": {width * height}</P></DevI>')
    edges = []
    for x in range(width):
        for y in range(height):
            around = [(x, (y - 1) % height), ((x + 1) % width, y), (x, (y + 1) % height), ((x - 1) % width, y)]
            for direction, (nx, ny) in enumerate(around, 1):
                edges.append(f'<EdgeI path="n_{x}_{y}:in-n_{nx}_{ny}:out"><P>"direction": {direction}</P></EdgeI>')
    edges += [f'<EdgeI path="f:finished-n_{x}_{y}:finished"/>' for x in range(width) for y in range(height)]
    _doc(out, CORPUS / "ising_spin_fix_3_1.xml", f"ising_{width}_{height}", "ising_spin_fix", props, devices, edges)


def apsp(out: IO[str], nodes: int, degree: int, seed: int = 1) -> None:
    if nodes < 2 or nodes & (nodes - 1):
        raise SystemExit("apsp: nodes must be a power of 2 (the control tree is binary)")
    rnd = random.Random(seed)
    devices = [f'<DevI id="controller" type="controller"><P>"node_count": {nodes}, "refSumMaxDist": 0, '
               f'"refSumSumDist": 0</P></DevI>']
    devices += [f'<DevI id="n{i}" type="node"><P>"index": {i}, "degree": {degree}</P></DevI>' for i in range(nodes)]
    edges = []
    pairs: set[tuple[int, int]] = set()
    for _ in range(degree):
        while True:  # a permutation without fixed points or repeated pairs
            perm = list(range(nodes))
            rnd.shuffle(perm)
            if all(i != p and (i, p) not in pairs for i, p in enumerate(perm)):
                break
        for i, p in enumerate(perm):
            pairs.add((i, p))
            edges.append(f'<EdgeI path="n{p}:din-n{i}:dout"><P>"w": {rnd.randint(1, 9)}</P></EdgeI>')
    level, width, below = 0, 1, [f"n{i}" for i in range(nodes)]
    while len(below) > 1:
        above = []
        for k in range(0, len(below), 2):
            b = f"b_{level}_{k * width}"
            above.append(b)
            devices.append(f'<DevI id="{b}" type="control_fanout"><P>"degree": 2</P></DevI>')
            for child in below[k:k + 2]:
                edges.append(f'<EdgeI path="{b}:response_in-{child}:response_out"/>')
                edges.append(f'<EdgeI path="{child}:request_in-{b}:request_out"/>')
        below, level, width = above, level + 1, width * 2
    edges.append(f'<EdgeI path="{below[0]}:request_in-controller:request_out"/>')
    edges.append(f'<EdgeI path="controller:response_in-{below[0]}:response_out"/>')
    _doc(out, CORPUS / "apsp_2_2.xml", f"apsp_{nodes}_{degree}", "apsp", "", devices, edges)


GENERATORS = {"clock_tree": clock_tree, "ising_spin_fix": ising_spin_fix, "apsp": apsp}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("app", choices=sorted(GENERATORS))
    parser.add_argument("sizes", nargs="+", type=int)
    args = parser.parse_args()
    GENERATORS[args.app](sys.stdout, *args.sizes)


if __name__ == "__main__":
    main()
