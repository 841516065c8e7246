"""cdecl: v4's C member declarations and brace initialisers, checked against the model and the
bytes values.py packs, and every refusal naming file, line and the element."""
from __future__ import annotations

import struct

import pytest

from pstack_tasks.exceptions import GraphError
from pstack_tasks.graph.cdecl import flat_ints, int_member_names, parse_initialiser, parse_struct, parse_values
from pstack_tasks.graph.model import Array, Field, Scalar, Struct, Tuple
from pstack_tasks.graph.values import Packer


def decl(text: str) -> Struct:
    return parse_struct(text, "app.xml", 10, "<State> of device type 'd'")


def test_scalars_keep_order_type_and_line():
    s = decl("uint32_t x;\n  int16_t y; double z;\nchar c;")
    assert s == Struct((Field("x", Scalar("uint32_t"), 10), Field("y", Scalar("int16_t"), 11),
                        Field("z", Scalar("double"), 11), Field("c", Scalar("char"), 12)))
    assert s.format == "<Ihdb"


def test_every_fixed_width_type_is_accepted():
    types = ["int8_t", "uint8_t", "int16_t", "uint16_t", "int32_t", "uint32_t", "int64_t", "uint64_t",
             "float", "double"]
    s = decl("".join(f"{t} m{i};" for i, t in enumerate(types)))
    assert [f.type.ctype for f in s.fields] == types
    assert s.size == 1 + 1 + 2 + 2 + 4 + 4 + 8 + 8 + 4 + 8


def test_multi_dimensional_arrays_nest_outermost_first():
    s = decl("int8_t v[2][3]; float w[4];")
    assert s.fields[0].type == Array(Array(Scalar("int8_t"), 3), 2)
    assert s.fields[1].type == Array(Scalar("float"), 4)
    assert s.size == 6 + 16


def test_nested_structs_and_arrays_of_structs():
    s = decl("struct { uint16_t a; struct { int32_t b; } inner; } nest;\n"
             "struct tag { float f; } many[3];")
    assert s.fields[0].type == Tuple((Field("a", Scalar("uint16_t"), 10),
                                      Field("inner", Tuple((Field("b", Scalar("int32_t"), 10),)), 10)))
    assert s.fields[1].type == Array(Tuple((Field("f", Scalar("float"), 11),)), 3)
    assert s.format == "<Hi" + "f" * 3


def test_several_declarators_share_a_type():
    s = decl("uint8_t a, b[2], c;")
    assert [(f.name, f.type) for f in s.fields] == [("a", Scalar("uint8_t")), ("b", Array(Scalar("uint8_t"), 2)),
                                                    ("c", Scalar("uint8_t"))]


def test_comments_and_blank_text_are_ignored():
    assert decl("  // nothing here\n /* nor\n here */ ") == Struct()
    assert parse_struct(None, "app.xml", 1, "x") == Struct()
    s = decl("/* a */ uint32_t /* b */ x; // c\n uint8_t y; /* multi\nline */ uint8_t z;")
    assert [(f.name, f.line) for f in s.fields] == [("x", 10), ("y", 11), ("z", 12)]


@pytest.mark.parametrize("text,line,words", [
    ("uint32_t x = 5;", 10, ["'x'", "initialiser", "no defaults"]),
    ("\nint x;", 11, ["'int'", "fixed-width"]),
    ("unsigned x;", 10, ["unsigned"]),
    ("bool flag;", 10, ["bool", "uint8_t"]),
    ("my_t x;", 10, ["unknown type 'my_t'", "uint32_t"]),
    ("union { uint8_t a; } u;", 10, ["union"]),
    ("typedef uint8_t b;", 10, ["typedef"]),
    ("uint8_t *p;", 10, ["pointer"]),
    ("uint8_t x[0];", 10, ["'x'", "positive integer length"]),
    ("uint8_t x[n];", 10, ["'x'", "positive integer length", "'n'"]),
    ("uint8_t x[2;", 10, ["']'"]),
    ("uint8_t x", 10, ["';'", "'x'"]),
    ("uint8_t x;\n\nuint8_t x;", 12, ["duplicate member name 'x'"]),
    ("struct { uint8_t a;", 10, ["missing '}'"]),
    ("struct { } s;", 10, ["empty nested struct"]),
    ("uint8_t f : 3;", 10, ["bit-field"]),
    ("uint8_t uint32_t;", 10, ["member name", "uint32_t"]),
    ("\n\n/* never closed", 12, ["unterminated"]),
    ("uint8_t a; @", 10, ["unexpected character '@'"]),
])
def test_malformed_declarations_name_file_line_and_element(text, line, words):
    with pytest.raises(GraphError) as e:
        decl(text)
    assert e.value.file == "app.xml" and e.value.line == line
    assert "<State> of device type 'd'" in str(e.value)
    for w in words:
        assert w in str(e.value)


def test_initialiser_numbers_suffixes_and_nesting():
    assert parse_initialiser("{1, {2, 3}, {}}", "f", 1, "P") == [1, [2, 3], []]
    assert parse_initialiser("{7u, 8ul, 9ll, 10ull, 11LLU, 0x1F, 010, -3, +4}", "f", 1, "P") == \
        [7, 8, 9, 10, 11, 31, 8, -3, 4]
    assert parse_initialiser("{1.5, -2.5e-3, 3.f, .25, 1e3}", "f", 1, "P") == [1.5, -2.5e-3, 3.0, 0.25, 1000.0]
    assert parse_initialiser("{ 1 , 2 , }", "f", 1, "P") == [1, 2]  # C allows a trailing comma
    assert parse_initialiser("{true, false}", "f", 1, "P") == [1, 0]
    assert parse_initialiser("5", "f", 1, "P") == 5


SPEC = decl("uint32_t id; uint8_t grid[2][2]; struct { uint16_t a; struct { int32_t b; } inner; } nest; "
            "double d; uint64_t big;")


def test_values_match_the_struct_and_pack_like_v3_json():
    values = parse_values("{1, {{1, 2}, {3, 4}}, {10, {-5}}, 0.1, 18446744073709551615ull}", SPEC, "f", 3, "P")
    assert values == {"id": 1, "grid": [[1, 2], [3, 4]], "nest": {"a": 10, "inner": {"b": -5}}, "d": 0.1,
                      "big": 2 ** 64 - 1}
    data = Packer(SPEC).pack(values)
    assert data == struct.pack("<IBBBBHidQ", 1, 1, 2, 3, 4, 10, -5, 0.1, 2 ** 64 - 1)


def test_short_initialisers_leave_zeros_as_in_c():
    values = parse_values("{2u, {{5, 6}}, {20}}", SPEC, "f", 3, "P")
    assert values == {"id": 2, "grid": [[5, 6]], "nest": {"a": 20}}
    assert Packer(SPEC).unpack(Packer(SPEC).pack(values)) == {
        "id": 2, "grid": [[5, 6], [0, 0]], "nest": {"a": 20, "inner": {"b": 0}}, "d": 0.0, "big": 0}
    assert parse_values("{}", SPEC, "f", 3, "P") is None
    assert parse_values("  ", SPEC, "f", 3, "P") is None
    assert parse_values(None, SPEC, "f", 3, "P") is None


def test_braces_around_a_scalar_are_allowed():
    assert parse_values("{{7}}", decl("uint8_t x;"), "f", 1, "P") == {"x": 7}


@pytest.mark.parametrize("text,words", [
    ("{1, 2", ["missing '}'"]),
    ("{1 2}", ["expected ',' or '}'", "'2'"]),
    ("{1}}", ["unexpected '}'"]),
    ("{.id = 1}", ["designated initialisers"]),
    ("{abc}", ["expected a number", "'abc'"]),
    ("{1.5u}", ["bad number '1.5u'"]),
    ("{1, {1, 2, 3}}", ["grid: 3 values for an array of length 2"]),
    ("{1, 2}", ["grid: expected '{...}' for an array"]),
    ("{1, {}, 5}", ["nest: expected '{...}' for a struct"]),
    ("{1, {}, {}, 0, 0, 9}", ["6 values for a struct of 5 members"]),
    ("{{1, 2}}", ["id: expected one number for uint32_t"]),
    ('{"x"}', ["unexpected character"]),
])
def test_malformed_initialisers_name_file_line_and_owner(text, words):
    with pytest.raises(GraphError) as e:
        parse_values(text, SPEC, "app.xml", 42, "P of device 'd0'")
    assert e.value.file == "app.xml" and e.value.line == 42
    assert "P of device 'd0'" in str(e.value)
    for w in words:
        assert w in str(e.value), str(e.value)


@pytest.mark.parametrize("text,expected", [
    ("{1, 2}", [1, 2]), (" { -3 , 4u , 5ull , 6LL, 7lu } ", [-3, 4, 5, 6, 7]), ("{}", []), ("{0, 9,}", [0, 9]),
    ("{010}", None), ("{0x10}", None), ("{1.5}", None), ("{{1}}", None), ("{1uu}", None), ("{1 2}", None),
    ("{1,", None), ("1", None),
])
def test_flat_integer_fast_path_takes_only_what_the_parser_would_read_the_same(text, expected):
    assert flat_ints(text) == expected
    if expected is not None:
        assert parse_initialiser(text, "f", 1, "P") == expected


def test_int_member_names_only_for_all_integer_structs():
    assert int_member_names(decl("uint32_t a; int8_t b;")) == ("a", "b")
    assert int_member_names(decl("uint32_t a; float b;")) is None
    assert int_member_names(decl("uint32_t a[2];")) is None
