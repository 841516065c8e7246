"""Malformed input the reader must refuse in one line naming file:line (issue 12, item 10, and what
the fuzz test of tests/test_fuzz.py found).  Each test reproduces one defect on a real test app
of each version it applies to: v2 (pstack's basic-01), v3 (tests/data/v3/values.xml, indexed.xml)
and v4 (tests/data/v4/structs.xml)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pstack_tasks.exceptions import GraphError
from pstack_tasks.graph.loader import load
from pstack_tasks.graph.model import MAX_NESTING, MAX_SCALARS
from support.apps import line_of, variant
from support.paths import DATA

V3, V4 = DATA / "v3", DATA / "v4"
PSIM = Path(sys.executable).with_name("psim")
#: (file, folder, the text of a handler's last CDATA end, and the line its section opens on)
HANDLER_CDATA = {
    "v2": ("basic-01.xml", DATA / "pstack", "deviceState->counter = 0;\n                        ]]>",
           "deviceState->counter = 0;"),
    "v3": ("values.xml", V3, "deviceState->gtable = graphProperties->table[0] + graphProperties->table[2];\n"
           "        ]]>", "<OnInit><![CDATA["),
    "v4": ("structs.xml", V4, None, None),
}


def refused(path: Path) -> GraphError:
    with pytest.raises(GraphError) as info:
        load(str(path))
    return info.value


def psim_error(path: Path) -> tuple[int, list[str]]:
    p = subprocess.run([str(PSIM), "-q", "-r", path.name], cwd=path.parent, capture_output=True, text=True,
                       timeout=120)
    return p.returncode, p.stderr.strip("\n").split("\n")


# ---- item 10a: an unfinished CDATA section ----------------------------------------------------

def _unclosed_last_cdata(name: str, folder: Path, tmp: Path) -> tuple[Path, int]:
    """The app with its last ']]>' removed, and the line where that CDATA section opens."""
    text = (folder / name).read_text()
    end = text.rindex("]]>")
    path = tmp / "app.xml"
    path.write_text(text[:end] + text[end + 3:])
    return path, text.count("\n", 0, text.rindex("<![CDATA[", 0, end)) + 1


@pytest.mark.parametrize("version", ["v2", "v3", "v4"])
def test_unfinished_cdata_is_one_line_naming_where_it_opened(version: str, tmp_path: Path) -> None:
    """It printed libxml2's message plus the 2-4 lines of handler code after it, at the file's end."""
    name, folder, _, _ = HANDLER_CDATA[version]
    path, opened = _unclosed_last_cdata(name, folder, tmp_path)
    err = refused(path)
    assert err.line == opened and "\n" not in str(err), str(err)
    assert "CDATA section opened here is never closed" in err.reason
    status, lines = psim_error(path)
    assert status == 3 and lines == [f"psim: error: app.xml:{opened}: {err.reason}"], lines


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_cdata_closed_late_is_one_line(version: str, tmp_path: Path) -> None:
    """A section missing its ']]>' swallows markup up to the next one (a tag mismatch, or a pin
    gone missing): one line with a line number."""
    name, folder, old, _ = HANDLER_CDATA[version]
    assert old is not None
    path = variant(name, old, old.replace("]]>", ""), tmp_path, folder=folder)
    err = refused(path)
    assert err.line is not None and "\n" not in str(err), str(err)


# ---- item 10b: JSON null for a member ---------------------------------------------------------

@pytest.mark.parametrize("name, folder, old, new, owner, member", [
    ("basic-01.xml", DATA / "pstack", '<P>"id": 1</P>', '<P>"id": null</P>', "properties of device 'device1'", "id"),
    ("values.xml", V3, '"plain": 6,', '"plain": null,', "state of device 'd1'", "plain"),
    ("values.xml", V3, '"dense": [9]', '"dense": [9, null]', "state of device 'd1'", "dense[1]"),
    ("values.xml", V3, '"nested": {"inner": {"c": [5]}}', '"nested": {"inner": null}', "state of device 'd1'",
     "nested.inner"),
    ("values.xml", V3, '"dense": [9]', '"dense": null', "state of device 'd1'", "dense"),
    ("values.xml", V3, '"scale": 3', '"scale": null', "graph properties", "scale"),
])
def test_json_null_is_refused_naming_device_field_and_line(name: str, folder: Path, old: str, new: str, owner: str,
                                                           member: str, tmp_path: Path) -> None:
    """``"degree": null`` was read as 0 (where ``"x"`` is refused): graph-schema gives null no meaning."""
    path = variant(name, old, new, tmp_path, folder=folder)
    err = refused(path)
    assert err.line == line_of(path, "null"), str(err)
    assert err.reason.startswith(f"{owner}: {member}: null is not a value"), str(err)


def test_json_null_in_a_default_is_refused(tmp_path: Path) -> None:
    path = variant("values.xml", "<Default>[7, 8, 9]</Default>", "<Default>[7, null, 9]</Default>", tmp_path,
                   folder=V3)
    err = refused(path)
    assert err.line == line_of(path, "[7, null, 9]") and "bad default" in err.reason and "null" in err.reason


def test_null_refused_on_the_command_line_in_one_line(tmp_path: Path) -> None:
    path = variant("basic-01.xml", '<P>"id": 1</P>', '<P>"id": null</P>', tmp_path)
    status, lines = psim_error(path)
    assert status == 3 and len(lines) == 1 and lines[0].startswith(f"psim: error: app.xml:{line_of(path, 'null')}: ")


# ---- found by the fuzz test -------------------------------------------------------------------

@pytest.mark.parametrize("length", ["2000000", "4294967296", "99999999999999999999"])
def test_huge_array_length_is_refused_at_once(length: str, tmp_path: Path) -> None:
    """A length of 1e8 ended in MemoryError (a traceback), 4294967296 in a hang."""
    path = variant("ring-oscillator-01.xml", 'length="1024"', f'length="{length}"', tmp_path)
    err = refused(path)
    assert err.line == line_of(path, f'length="{length}"')
    assert f"{int(length)} scalars, more than the {MAX_SCALARS}" in err.reason


def test_many_large_arrays_in_one_struct_are_refused(tmp_path: Path) -> None:
    arrays = "".join(f'<Array name="a{i}" length="500000" type="uint8_t"/>' for i in range(3))
    path = variant("basic-01.xml", '<Scalar name="id" type="uint32_t"></Scalar>',
                   '<Scalar name="id" type="uint32_t"></Scalar>' + arrays, tmp_path)
    assert "<Properties> of device type 'device': 1500001 scalars" in refused(path).reason


def test_huge_v4_array_is_refused(tmp_path: Path) -> None:
    path = variant("structs.xml", "uint8_t grid[2][2];", "uint8_t grid[65536][65536];", tmp_path, folder=V4)
    err = refused(path)
    assert err.line == line_of(path, "grid[65536]") and "member 'grid': 4294967296 scalars" in err.reason


def test_deeply_nested_members_are_refused(tmp_path: Path) -> None:
    """400 nested <Tuple>s ended in RecursionError."""
    n = 400
    path = variant("basic-01.xml", '<Scalar name="id" type="uint32_t"></Scalar>',
                   '<Tuple name="t">' * n + '<Scalar name="id" type="uint32_t"/>' + "</Tuple>" * n, tmp_path)
    err = refused(path)
    assert f"members nested more than {MAX_NESTING} levels deep" in err.reason and err.line is not None


def test_nesting_at_the_bound_is_read(tmp_path: Path) -> None:
    n = MAX_NESTING - 1
    path = variant("basic-01.xml", '<Scalar name="id" type="uint32_t"></Scalar>',
                   '<Tuple name="t">' * n + '<Scalar name="id" type="uint32_t"/>' + "</Tuple>" * n, tmp_path)
    path.write_text(path.read_text().replace('"id": 0', "").replace('"id": 1', ""))
    assert load(str(path)).graph_type.device_types[0].properties.size == 4


@pytest.mark.parametrize("depth", [100, 2000, 100000])
def test_deeply_nested_json_is_refused(depth: int, tmp_path: Path) -> None:
    """``[[[...]]]`` 2000 deep ended in RecursionError inside json."""
    path = variant("basic-01.xml", '<P>"id": 1</P>', '<P>"id": ' + "[" * depth + "]" * depth + "</P>", tmp_path)
    err = refused(path)
    assert err.line == line_of(path, '"id": [') and "device 'device1'" in err.reason


@pytest.mark.parametrize("depth", [100, 100000])
def test_deeply_nested_v4_initialiser_is_refused(depth: int, tmp_path: Path) -> None:
    path = variant("structs.xml", 'P="{2u, {{5, 6}}, {20}}"', 'P="' + "{" * depth + "}" * depth + '"', tmp_path,
                   folder=V4)
    err = refused(path)
    assert err.line == line_of(path, 'P="{{{') and f"nested more than {MAX_NESTING} levels deep" in err.reason


def test_deeply_nested_v4_struct_is_refused(tmp_path: Path) -> None:
    n = 200
    path = variant("structs.xml", "uint32_t id;", "struct { " * n + "uint32_t z;" + " } s;" * n + " uint32_t id;",
                   tmp_path, folder=V4)
    assert f"nested more than {MAX_NESTING} levels deep" in refused(path).reason


def test_json_number_of_5000_digits_is_refused(tmp_path: Path) -> None:
    """Python refuses to read integers of more than 4300 digits: that ValueError was a traceback."""
    path = variant("basic-01.xml", '<P>"id": 1</P>', '<P>"id": ' + "1" * 5000 + "</P>", tmp_path)
    err = refused(path)
    assert err.line == line_of(path, '"id": 111') and "a number too long to read" in err.reason
    assert len(str(err)) < 300


def test_v4_number_of_5000_digits_is_shown_cut(tmp_path: Path) -> None:
    path = variant("structs.xml", 'P="{2u, {{5, 6}}, {20}}"', 'P="{' + "1" * 5000 + '}"', tmp_path, folder=V4)
    err = refused(path)
    assert "bad number '111" in err.reason and len(str(err)) < 300


def test_send_index_beyond_the_edges_is_refused(tmp_path: Path) -> None:
    """sendIndex="99999999999" ended in OverflowError writing the edge record."""
    path = variant("indexed.xml", 'sendIndex="2"', 'sendIndex="99999999999"', tmp_path, folder=V3)
    err = refused(path)
    assert err.line == line_of(path, "99999999999") and "none with sendIndex 2: the indices must be 0..3" in err.reason


@pytest.mark.parametrize("keyword", ["true", "class", "int"])
def test_a_cxx_keyword_as_a_name_is_refused_by_the_reader(keyword: str, tmp_path: Path) -> None:
    # found by the fuzz test: it reached the compiler and was reported as an error in generated code
    app = variant("basic-01.xml", 'name="counter"', f'name="{keyword}"', tmp_path)
    with pytest.raises(GraphError, match=rf"<Scalar> name='{keyword}' is a C\+\+ keyword: choose another name"):
        load(str(app))


def test_a_tuple_without_members_is_refused_by_the_reader(tmp_path: Path) -> None:
    # found by the fuzz test: C++ gives `struct { }` a size of 1 where the packed layout has 0, so
    # the engine failed to compile with an error in generated code
    app = variant("values.xml", '<Tuple name="p"><Scalar name="u" type="uint8_t" default="9"/></Tuple>',
                  '<Tuple name="p"/>', tmp_path, folder=DATA / "v3")
    with pytest.raises(GraphError, match=r"app\.xml:\d+: tuple 'p' has no members$") as e:
        load(str(app))
    assert e.value.line == line_of(app, '<Tuple name="p"/>')


def test_a_tag_with_an_undeclared_prefix_is_one_line_naming_it(tmp_path: Path) -> None:
    """``<Sc:lar>`` (a byte flipped by the fuzzer): libxml2 keeps the undeclared prefix in the tag's
    name, which lxml's QName refused with a traceback; the reader names the element and its line."""
    app = variant("basic-01.xml", '<Scalar name="counter" type="uint32_t"></Scalar>',
                  '<Sc:lar name="counter" type="uint32_t"></Sc:lar>', tmp_path, folder=DATA / "pstack")
    status, lines = psim_error(app)
    assert status != 0 and len(lines) == 1, lines
    assert lines[0] == (f"psim: error: {app.name}:{line_of(app, '<Sc:lar')}: unexpected <Sc:lar> where a Scalar, "
                        "Array or Tuple member was expected"), lines


def test_a_namespace_uri_with_a_brace_is_one_line_naming_it(tmp_path: Path) -> None:
    """``xmlns="htt}s://..."`` (a byte flipped by the fuzzer, seed 4076837243): lxml's QName refused the
    tag ``{htt}s://...}Graphs`` with a traceback; the reader names the namespace and its line."""
    app = variant("basic-01.xml", 'xmlns="https://', 'xmlns="htt}s://', tmp_path, folder=DATA / "pstack")
    status, lines = psim_error(app)
    assert status != 0 and len(lines) == 1, lines
    assert lines[0].startswith(f"psim: error: {app.name}:{line_of(app, '<Graphs')}: unknown namespace "
                               "'htt}s://poets-project.org/schemas/virtual-graph-schema-v"), lines
