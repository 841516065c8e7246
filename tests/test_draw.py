"""draw: an application graph as graphviz draws it, devices coloured by region and the cut marked;
collapsed to device types per region when large; ``pstack draw`` on the command line."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from pstack_tasks.exceptions import ConfigurationError
from pstack_tasks.ui.drawing import draw
from support.apps import token_ring
from support.commands import bare_env, pstack
from support.paths import PSTACK

RING = PSTACK / "ring-oscillator-01.xml"


def test_devices_are_coloured_by_region_and_cut_edges_marked(tmp_path: Path) -> None:
    text = Path(draw(RING, {"n1": 1}, tmp_path / "ring.dot")).read_text()
    assert re.findall(r'd(\d) \[label="(n\d)\\nnode", fillcolor=(\w+)', text) == [
        ("0", "n0", "lightblue"), ("1", "n1", "palegreen"), ("2", "n2", "lightblue"), ("3", "n3", "lightblue")]
    cut = [line.split(" [")[0].strip() for line in text.splitlines() if 'color="red"' in line]
    assert cut == ["d0 -> d1", "d1 -> d2"]  # n1 alone in region 1: both its edges cross
    assert "4 devices, 4 edges, 2 regions, 2 cut edges" in text


def test_pictures_are_drawn_by_graphviz_as_svg_and_png(tmp_path: Path) -> None:
    svg = Path(draw(RING, path=tmp_path / "ring.svg", regions=2))
    assert svg.read_text().lstrip().startswith("<?xml") and "<svg" in svg.read_text() and "n3" in svg.read_text()
    png = Path(draw(RING, path=tmp_path / "ring.png"))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ConfigurationError, match="give a file ending in .svg"):
        draw(RING, path=tmp_path / "ring.jpg")


def test_a_large_graph_is_drawn_as_device_types_per_region_with_edge_counts(tmp_path: Path) -> None:
    app = tmp_path / "big.xml"
    app.write_text(token_ring(300, 1))
    rmap = {f"n{i}": i // 100 for i in range(300)}  # three arcs of the ring: 3 edges cross
    text = Path(draw(app, rmap, tmp_path / "big.dot")).read_text()
    nodes = re.findall(r'(t0_r\d) \[label="node\\nregion \d\\n(\d+) devices"', text)
    assert nodes == [("t0_r0", "100"), ("t0_r1", "100"), ("t0_r2", "100")]
    edges = sorted(re.findall(r'(t0_r\d) -> (t0_r\d) \[label="(\d+)"', text))
    assert edges == [("t0_r0", "t0_r0", "99"), ("t0_r0", "t0_r1", "1"), ("t0_r1", "t0_r1", "99"),
                     ("t0_r1", "t0_r2", "1"), ("t0_r2", "t0_r0", "1"), ("t0_r2", "t0_r2", "99")]
    assert text.count('color="red"') == 3 and "300 devices, 300 edges, 3 regions, 3 cut edges" in text


def test_pstack_draw_writes_the_file_it_names(tmp_path: Path) -> None:
    out = tmp_path / "ring.svg"
    p = pstack("draw", str(RING), "--rmap", '{"n2": 1}', "-o", str(out), env=bare_env())
    assert p.returncode == 0 and p.stdout.strip() == str(out), p.stderr
    assert "<svg" in out.read_text()
    p = pstack("draw", str(RING), "-o", str(tmp_path / "x.gif"), env=bare_env())
    assert p.returncode != 0 and len(p.stderr.splitlines()) == 1
    assert p.stderr.startswith("pstack: error: cannot draw to ")
