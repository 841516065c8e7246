"""Seeded mutations of graph-schema XML files, for the fuzz test of the reader (tests/test_fuzz.py).

Each mutation kind is a function ``(rng, source bytes) -> mutated bytes`` (or None when the file
offers nothing to mutate, e.g. no ``<P>`` body).  Every random choice comes from ``rng``, so a
case is reproduced exactly from its seed: :func:`mutate` takes the seed and the case number.
The kinds follow what people and tools get wrong: bytes flipped or cut, elements and attributes
deleted, duplicated or swapped, junk attribute values, broken CDATA, edges to unknown devices,
duplicate ids, mutated JSON value bodies (v2/v3) and C initialisers (v4), namespaces, and
handler code that no longer compiles.
"""
from __future__ import annotations

import copy
import json
import random
import re
from collections.abc import Callable
from typing import Any, NamedTuple

from lxml import etree

Mutation = Callable[[random.Random, bytes], "bytes | None"]

#: attribute values that are negative, huge, non-numeric, empty or odd
JUNK = ["-1", "-2147483649", "4294967296", "18446744073709551616", "99999999999999999999999999", "1e400",
        "abc", "", " ", "0x1F", "NaN", "3.5", "\u00e9\u00e9", "a b", "<&>", "true", "0", "-0", "__init__",
        "x:y-z:w", ":", "-", "n0:in-n0:in-n0:out"]
#: JSON values put where a member's value was
JSON_JUNK: list[Any] = [None, "x", "", [[1]], [], {}, {"zz": 1}, -1, -(2 ** 70), 2 ** 70, 1.5, 1e308, True,
                        [None], [1, [2]], {"0": None}, "LONG_NUMBER"]
#: JSON bodies that are not a list of "name": value pairs
BODY_JUNK = ["null", "[1, 2]", '"a": 1,', '"a": ', "{", "}", '"a": 1 "b": 2', "'a': 1", '"a": NaN', "\"a\": 1}{"]
#: v4 C initialisers
INIT_JUNK = ["{", "}", "{1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17}", "{{{{1}}}}", "{-1}", "{1e999}", "{x}",
             "{0x}", "", "{1,,2}", "{\"s\"}", "{18446744073709551616}", "{/* }", "{1.5}"]
#: code that does not compile, put into a handler
BAD_CODE = ["pstack_fuzz_undeclared_name = 1;", "int x = ;", "deviceState->pstack_fuzz_no_member = 1;",
            "if (1 {", "return 1 +;"]
HANDLERS = {"OnReceive", "OnSend", "ReadyToSend", "OnInit", "OnHardwareIdle"}
NAMESPACES = ["https://poets-project.org/schemas/virtual-graph-schema-v2",
              "https://poets-project.org/schemas/virtual-graph-schema-v3",
              "https://poets-project.org/schemas/virtual-graph-schema-v4",
              "https://poets-project.org/schemas/virtual-graph-schema-v9", "", "urn:x"]


class Case(NamedTuple):
    """One mutated file: which source, which kind, and the bytes."""

    source: str
    kind: str
    data: bytes


# ---- helpers ------------------------------------------------------------------------------------

def _tree(data: bytes) -> etree._ElementTree:
    """The source as a tree that keeps CDATA sections and comments (lines stay where they were)."""
    return etree.ElementTree(etree.fromstring(data, etree.XMLParser(strip_cdata=False, huge_tree=True)))


def _bytes(tree: etree._ElementTree) -> bytes:
    return etree.tostring(tree, xml_declaration=True, encoding="UTF-8")


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _elements(tree: etree._ElementTree, *names: str) -> list[etree._Element]:
    """The elements (not the root) whose local name is in ``names`` (every element if none)."""
    root = tree.getroot()
    return [e for e in root.iter() if isinstance(e.tag, str) and e is not root
            and (not names or _local(e) in names)]


def _tree_mutation(fn: Callable[[random.Random, etree._ElementTree], bool]) -> Mutation:
    """A mutation of the parsed tree; the source is returned re-serialised when ``fn`` changed it."""
    def run(rng: random.Random, data: bytes) -> bytes | None:
        tree = _tree(data)
        return _bytes(tree) if fn(rng, tree) else None
    run.__name__ = fn.__name__
    return run


# ---- byte level ---------------------------------------------------------------------------------

def byte_flip(rng: random.Random, data: bytes) -> bytes | None:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(out))
        out[i] = rng.choice([out[i] ^ (1 << rng.randrange(8)), rng.randrange(256), ord(rng.choice("<>&\"'/]{}:"))])
    return bytes(out)


def truncate(rng: random.Random, data: bytes) -> bytes | None:
    return data[:rng.randrange(len(data))]


def broken_cdata(rng: random.Random, data: bytes) -> bytes | None:
    """A CDATA section left open, opened twice, or closed early."""
    ends = [m.start() for m in re.finditer(rb"\]\]>", data)]
    if not ends:
        return None
    i = rng.choice(ends)
    how = rng.randrange(3)
    if how == 0:
        return data[:i] + data[i + 3:]  # never closed (here or at the end of the file)
    if how == 1:
        return data[:i] + b"]]> stray ]]>" + data[i + 3:]
    return data[:i] + b"<![CDATA[" + data[i:]


def duplicate_attribute(rng: random.Random, data: bytes) -> bytes | None:
    tags = [m for m in re.finditer(rb"<(\w+)(\s+)(\w+)=(\"[^\"]*\")", data)]
    if not tags:
        return None
    m = rng.choice(tags)
    return data[:m.end()] + b" " + m.group(3) + b"=" + m.group(4) + data[m.end():]


# ---- elements and attributes --------------------------------------------------------------------

def _delete_element(rng: random.Random, tree: etree._ElementTree) -> bool:
    el = rng.choice(_elements(tree))
    el.getparent().remove(el)  # type: ignore[union-attr]
    return True


def _duplicate_element(rng: random.Random, tree: etree._ElementTree) -> bool:
    el = rng.choice(_elements(tree))
    el.addnext(copy.deepcopy(el))
    return True


def _swap_elements(rng: random.Random, tree: etree._ElementTree) -> bool:
    parents = [e for e in tree.getroot().iter() if len([c for c in e if isinstance(c.tag, str)]) >= 2]
    if not parents:
        return False
    parent = rng.choice(parents)
    kids = list(parent)
    i, j = rng.sample([k for k, c in enumerate(kids) if isinstance(c.tag, str)], 2)
    kids[i].tail, kids[j].tail = kids[j].tail, kids[i].tail  # the whitespace (and lines) stay in place
    kids[i], kids[j] = kids[j], kids[i]
    parent[:] = kids
    return True


def _with_attributes(tree: etree._ElementTree) -> list[etree._Element]:
    return [e for e in _elements(tree) if e.attrib]


def _delete_attribute(rng: random.Random, tree: etree._ElementTree) -> bool:
    el = rng.choice(_with_attributes(tree))
    del el.attrib[rng.choice(sorted(el.attrib))]
    return True


def _junk_attribute(rng: random.Random, tree: etree._ElementTree) -> bool:
    el = rng.choice(_with_attributes(tree))
    el.set(rng.choice(sorted(el.attrib)), rng.choice(JUNK))
    return True


def _unknown_edge_end(rng: random.Random, tree: etree._ElementTree) -> bool:
    edges = _elements(tree, "EdgeI")
    if not edges:
        return False
    el = rng.choice(edges)
    parts = re.split(r"([:-])", el.get("path") or "")
    words = [i for i in range(0, len(parts), 2)]
    parts[rng.choice(words)] = rng.choice(["pstack_fuzz_unknown", "", "9", "a b"])
    el.set("path", "".join(parts))
    return True


def _duplicate_id(rng: random.Random, tree: etree._ElementTree) -> bool:
    """Two siblings with the same id (devices, device types, message types) or pin name."""
    groups: dict[tuple[int, str, str], list[etree._Element]] = {}
    for e in _elements(tree):
        for attr in ("id", "name"):
            if e.get(attr) is not None and e.getparent() is not None:
                groups.setdefault((id(e.getparent()), _local(e), attr), []).append(e)
    pairs = [(k, v) for k, v in groups.items() if len(v) >= 2]
    if not pairs:
        return False
    (_, _, attr), els = rng.choice(pairs)
    a, b = rng.sample(els, 2)
    b.set(attr, a.get(attr) or "")
    return True


def _namespace(rng: random.Random, tree: etree._ElementTree) -> bool:
    root = tree.getroot()
    ns = rng.choice(NAMESPACES)
    for e in root.iter():
        if isinstance(e.tag, str):
            e.tag = f"{{{ns}}}{_local(e)}" if ns else _local(e)
    etree.cleanup_namespaces(root)
    return True


# ---- values -------------------------------------------------------------------------------------

def _some_path(rng: random.Random, value: Any) -> list[Any]:
    """A path of keys/indices to a random place inside a JSON value."""
    path: list[Any] = []
    while isinstance(value, (dict, list)) and value and rng.random() < 0.6:
        key = rng.choice(sorted(value)) if isinstance(value, dict) else rng.randrange(len(value))
        path.append(key)
        value = value[key]
    return path


def _mutated_json(rng: random.Random, body: str) -> str:
    try:
        value = json.loads("{" + body + "}") if not body.strip().startswith("{") else json.loads(body)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict) or rng.random() < 0.15:
        return rng.choice(BODY_JUNK)
    how = rng.randrange(3)
    if how == 0 or not value:
        value["pstack_fuzz_extra" if rng.random() < 0.5 else "_"] = rng.choice(JSON_JUNK)
    elif how == 1:
        del value[rng.choice(sorted(value))]
    else:
        path = _some_path(rng, value) or [rng.choice(sorted(value))]
        holder = value
        for key in path[:-1]:
            holder = holder[key]
        holder[path[-1]] = rng.choice(JSON_JUNK)
    return json.dumps(value)[1:-1].replace('"LONG_NUMBER"', "9" * 5000)  # past Python's 4300 digits


def _json_body(rng: random.Random, tree: etree._ElementTree) -> bool:
    bodies = [e for e in _elements(tree, "P", "S", "Properties", "Default", "MetaData")
              if (e.text or "").strip() and not len(e)]
    if not bodies:
        return False
    el = rng.choice(bodies)
    el.text = _mutated_json(rng, el.text or "")
    return True


def _c_initialiser(rng: random.Random, tree: etree._ElementTree) -> bool:
    """v4: a ``P``/``S`` attribute (or ``default``) replaced with a broken or ill-fitting initialiser."""
    els = [e for e in _elements(tree) if {"P", "S", "default"} & set(e.attrib)]
    if not els:
        return False
    el = rng.choice(els)
    el.set(rng.choice(sorted({"P", "S", "default"} & set(el.attrib))), rng.choice(INIT_JUNK))
    return True


def _handler_code(rng: random.Random, tree: etree._ElementTree) -> bool:
    """A handler whose code no longer compiles (a statement that cannot compile, at its start)."""
    handlers = [e for e in _elements(tree, *HANDLERS) if (e.text or "").strip()]
    if not handlers:
        return False
    el = rng.choice(handlers)
    text = el.text or ""
    lead = len(text) - len(text.lstrip())
    el.text = etree.CDATA(text[:lead] + rng.choice(BAD_CODE) + " " + text[lead:])
    return True


def _numeric_attribute(rng: random.Random, tree: etree._ElementTree) -> bool:
    """A number in an attribute (an array length, a sendIndex, a default) made huge, negative or odd."""
    els = [(e, a) for e in _elements(tree) for a, v in e.attrib.items() if re.fullmatch(r"-?[0-9.]+", str(v).strip())]
    if not els:
        return False
    el, attr = rng.choice(els)
    el.set(attr, rng.choice(["-1", "0", "4294967296", "99999999999999999999", "2000000", "1" * 5000, "1.5",
                             "0x10", "+3", " 7 "]))
    return True


def _deep_nesting(rng: random.Random, tree: etree._ElementTree) -> bool:
    """Values or members nested far deeper than any app: JSON arrays, v4 braces, Tuples."""
    depth = rng.choice([40, 400, 5000])
    bodies = [e for e in _elements(tree, "P", "S", "Properties", "Default") if (e.text or "").strip() and not len(e)]
    inits = [e for e in _elements(tree) if {"P", "S"} & set(e.attrib)]
    members = _elements(tree, "Scalar", "Array", "Tuple")
    how = rng.choice([h for h, ok in (("json", bodies), ("init", inits), ("member", members)) if ok] or ["none"])
    if how == "json":
        el = rng.choice(bodies)
        el.text = f'"{rng.choice(["x", "id", "_"])}": ' + "[" * depth + "1" + "]" * depth
    elif how == "init":
        el = rng.choice(inits)
        el.set(rng.choice(sorted({"P", "S"} & set(el.attrib))), "{" * depth + "1" + "}" * depth)
    elif how == "member":
        el = rng.choice(members)
        outer = inner = etree.Element(etree.QName(el).text.replace(_local(el), "Tuple"), name="t")
        for _ in range(min(depth, 1500) - 1):  # libxml2 refuses more than 2048 levels
            inner = etree.SubElement(inner, outer.tag, name="t")
        el.addprevious(outer)
        outer.tail = el.tail
        inner.append(el)
    return how != "none"


#: mutation kind -> function
KINDS: dict[str, Mutation] = {
    "byte_flip": byte_flip,
    "truncate": truncate,
    "broken_cdata": broken_cdata,
    "duplicate_attribute": duplicate_attribute,
    "delete_element": _tree_mutation(_delete_element),
    "duplicate_element": _tree_mutation(_duplicate_element),
    "swap_elements": _tree_mutation(_swap_elements),
    "delete_attribute": _tree_mutation(_delete_attribute),
    "junk_attribute": _tree_mutation(_junk_attribute),
    "unknown_edge_end": _tree_mutation(_unknown_edge_end),
    "duplicate_id": _tree_mutation(_duplicate_id),
    "namespace": _tree_mutation(_namespace),
    "json_body": _tree_mutation(_json_body),
    "c_initialiser": _tree_mutation(_c_initialiser),
    "handler_code": _tree_mutation(_handler_code),
    "numeric_attribute": _tree_mutation(_numeric_attribute),
    "deep_nesting": _tree_mutation(_deep_nesting),
}


def mutate(sources: dict[str, bytes], seed: int, case: int, kinds: list[str] | None = None) -> Case:
    """Case number ``case`` of the run with ``seed``: a source, a kind, and the mutated bytes.

    A kind that finds nothing to mutate in the chosen file tries another file (and then another
    kind), so every case is a real mutation.
    """
    rng = random.Random(f"{seed}:{case}")
    names = sorted(sources)
    choices = kinds or sorted(KINDS)
    for _ in range(100):
        kind, name = rng.choice(choices), rng.choice(names)
        data = KINDS[kind](rng, sources[name])
        if data is not None and data != sources[name]:
            return Case(name, kind, data)
    raise RuntimeError(f"no mutation applies (seed {seed}, case {case})")
