"""Pictures of an application graph: ``draw(app, rmap=None, path=None)`` and ``pstack draw``.

The graph is written as graphviz DOT text and laid out by graphviz's ``dot`` command (the
system package ``graphviz``; scripts/setup.sh installs it), so no Python binding is needed.
Devices are filled with their region's colour and edges that cross regions (the cut: each one
is a message through Redis) are drawn red and dashed.  Above ``collapse_above`` devices a
picture of every device says nothing, so it shows one node per (device type, region) with its
device count, and one edge per pair of such nodes with the number of edges it stands for.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from array import array
from collections import Counter
from pathlib import Path

from pstack_tasks.exceptions import ConfigurationError, PstackError
from pstack_tasks.graph import loader
from pstack_tasks.graph.application import EDGE_WORDS, Application
from pstack_tasks.graph.partition import combine
from pstack_tasks.native.split_cache import RegionMap, resolve

#: devices above which the picture shows device types per region instead of devices
COLLAPSE_ABOVE = 200
#: region fill colours (graphviz names), cycled for more regions
PALETTE = ("lightblue", "palegreen", "lightsalmon", "khaki", "plum", "lightcyan", "peachpuff", "thistle",
           "lightpink", "aquamarine", "wheat", "lightsteelblue")
#: what ``dot`` can write, by file suffix (``.dot``: the DOT text itself, no layout)
FORMATS = ("svg", "png", "pdf", "dot")
CUT_STYLE = 'color="red", style="dashed", penwidth=1.6'


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _colour(region: int) -> str:
    return PALETTE[region % len(PALETTE)]


def dot_source(app: Application, regions: array[int], collapse_above: int = COLLAPSE_ABOVE) -> str:
    """The application as DOT text: devices (or device types per region) coloured by region."""
    inst = app.instance
    head = [f"digraph {_quote(inst.id or 'graph')} {{", "  graph [overlap=false, fontname=Helvetica];",
            '  node [style=filled, fontname=Helvetica, fontsize=10];', "  edge [arrowsize=0.6];"]
    body = (_collapsed(app, regions) if inst.device_count > collapse_above else _devices(app, regions))
    legend = [f'  label={_quote(_caption(app, regions, inst.device_count > collapse_above))}; labelloc=t;']
    return "\n".join(head + legend + body + ["}"]) + "\n"


def _caption(app: Application, regions: array[int], collapsed: bool) -> str:
    used = sorted(set(regions))
    cut = sum(1 for k in range(0, len(app.instance.edges), EDGE_WORDS)
              if regions[app.instance.edges[k]] != regions[app.instance.edges[k + 2]])
    what = "device types per region" if collapsed else "devices"
    return (f"{app.graph_type.id} / {app.instance.id}: {app.instance.device_count} devices, "
            f"{app.instance.edge_count} edges, {len(used)} regions, {cut} cut edges (red, dashed); {what}")


def _devices(app: Application, regions: array[int]) -> list[str]:
    inst, gt = app.instance, app.graph_type
    lines = []
    for d, name in enumerate(inst.names):
        dtype = gt.device_types[inst.dev_type[d]].id
        label = name + "\n" + dtype
        lines.append(f"  d{d} [label={_quote(label)}, fillcolor={_colour(regions[d])}, "
                     f"tooltip={_quote(f'{name} ({dtype}), region {regions[d]}')}];")
    e = inst.edges
    for k in range(0, len(e), EDGE_WORDS):
        src, dst = e[k], e[k + 2]
        style = f" [{CUT_STYLE}]" if regions[src] != regions[dst] else ""
        lines.append(f"  d{src} -> d{dst}{style};")
    return lines


def _collapsed(app: Application, regions: array[int]) -> list[str]:
    inst, gt = app.instance, app.graph_type
    groups = Counter((inst.dev_type[d], regions[d]) for d in range(inst.device_count))
    lines = []
    for (t, r), n in sorted(groups.items(), key=lambda g: (g[0][1], g[0][0])):
        label = "\n".join((gt.device_types[t].id, f"region {r}", f"{n} devices"))
        lines.append(f"  t{t}_r{r} [label={_quote(label)}, shape=box, fillcolor={_colour(r)}];")
    e = inst.edges
    links: Counter[tuple[int, int, int, int]] = Counter()
    for k in range(0, len(e), EDGE_WORDS):
        src, dst = e[k], e[k + 2]
        links[(inst.dev_type[src], regions[src], inst.dev_type[dst], regions[dst])] += 1
    for (ts, rs, td, rd), n in sorted(links.items()):
        style = f", {CUT_STYLE}" if rs != rd else ""
        lines.append(f"  t{ts}_r{rs} -> t{td}_r{rd} [label={_quote(str(n))}{style}];")
    return lines


def draw(app: str | os.PathLike[str] | Application, rmap: RegionMap = None, path: str | os.PathLike[str] | None = None,
         regions: int | None = None, collapse_above: int = COLLAPSE_ABOVE) -> str:
    """Draw an application graph to a file; the file's path.

    Args:
        app: the application file (or its XML text, or a parsed application).
        rmap: region map ``{device: region}`` (or ``"auto:K"``) whose regions colour the devices.
        path: the picture's file: ``.svg``, ``.png``, ``.pdf``, or ``.dot`` for the DOT text
            (default: ``<instance id>.svg`` in the current directory).
        regions: split into this many regions by METIS, as ``run(..., regions=K)`` would.
        collapse_above: more devices than this are drawn as device types per region.

    Raises:
        GraphError: the file is malformed.
        ConfigurationError: an unknown format, or graphviz's ``dot`` is not installed.
    """
    parsed = app if isinstance(app, Application) else loader.load(_source(app))
    arr, _, _ = resolve(parsed, combine(rmap, regions))
    out = Path(path) if path is not None else Path(f"{parsed.instance.id or 'graph'}.svg")
    fmt = out.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise ConfigurationError(f"cannot draw to {out}: give a file ending in {', '.join('.' + f for f in FORMATS)}")
    text = dot_source(parsed, arr, collapse_above)
    if fmt == "dot":
        out.write_text(text)
        return str(out)
    dot = shutil.which("dot")
    if dot is None:
        raise ConfigurationError("drawing needs graphviz's `dot` command: install the graphviz package "
                                 "(apt-get install graphviz), or draw to a .dot file")
    done = subprocess.run([dot, f"-T{fmt}", "-o", str(out)], input=text, text=True, capture_output=True, timeout=300)
    if done.returncode != 0:
        raise PstackError(f"graphviz's dot could not draw {out}: {done.stderr.strip().splitlines()[-1:]}")
    return str(out)


def _source(app: str | os.PathLike[str]) -> str | bytes:
    """What the loader takes: a path, or XML text as bytes."""
    text = os.fspath(app)
    return text.encode() if text.lstrip().startswith("<") else text


__all__ = ["draw", "dot_source", "COLLAPSE_ABOVE"]
