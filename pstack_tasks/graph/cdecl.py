"""Graph-schema v4's C notation: struct member declarations and brace initialisers.

v4 writes typed data as C declarations (``uint32_t x; int8_t v[2][3]; struct { float a; } s;``)
and values as positional C brace initialisers (``{1, {2, 3}, 4ull}``).  This module turns the
first into the model's :class:`Field` tuples and the second into the JSON-like values
``values.py`` packs (dicts for structs, lists for arrays), so v4 files end in the same model and
the same bytes as v3 ones.  It knows nothing about XML: callers pass the text plus the file and
line where it starts, and every error is a :class:`GraphError` naming the line of the offending
token.

Supported (graph-schema.md section 9): the fixed-width scalar types, ``char``, ``float`` and
``double``; fixed arrays of any number of dimensions; nested anonymous ``struct { ... }``
members; several declarators per line (``uint8_t a, b[2];``); ``//`` and ``/* */`` comments.
Refused with a message: defaults (``= 5``; v4 has none), unions, typedefs, pointers, qualifiers,
bit-fields, other C types.  Initialisers are positional and may be shorter than the struct or
array (the rest is zero, as in C); designated initialisers and brace elision are refused.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from pstack_tasks.exceptions import GraphError
from pstack_tasks.graph.model import (
    MAX_NESTING,
    SCALAR_TYPES,
    Array,
    Field,
    FieldType,
    Scalar,
    Struct,
    Tuple,
    size_problem,
)

#: scalar types a v4 declaration may use (the model's list without pstack's internal ``bool``)
V4_SCALARS = tuple(t for t in SCALAR_TYPES if t != "bool")

_TOKEN = re.compile(r"""
    (?P<space>[ \t\r\f\v]+|\n)
  | (?P<comment>//[^\n]*|/\*.*?\*/)
  | (?P<number>[-+]?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)[uUlLfF]*)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[{}\[\];,=.*:()])
  | (?P<badcomment>/\*)
""", re.VERBOSE | re.DOTALL)


@dataclass(frozen=True)
class Token:
    kind: str   # number, ident, punct, end
    text: str
    line: int | None   # line in the file, if known


def tokenize(text: str, file: str | None, line: int | None, what: str = "C text") -> list[Token]:
    """Split C text into tokens, dropping blanks and comments; ``line`` is where ``text`` starts."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.lastgroup == "badcomment":
            problem = "unterminated /* comment" if m is not None else f"unexpected character {text[pos]!r}"
            raise GraphError(f"{what}: {problem}", file, line)
        kind = m.lastgroup
        value = m.group()
        if kind in ("number", "ident", "punct"):
            tokens.append(Token(kind, value, line))
        if line is not None:
            line += value.count("\n")
        pos = m.end()
    tokens.append(Token("end", "end of text", line))
    return tokens


def _shown(text: str) -> str:
    """A token quoted in an error, cut to 40 characters (a mistyped number can be thousands)."""
    return repr(text if len(text) <= 40 else text[:37] + "...")


class _Cursor:
    """A token stream with one-token lookahead and errors that name file and line."""

    def __init__(self, tokens: list[Token], file: str | None, what: str,
                 named: Mapping[str, FieldType] | None = None) -> None:
        self.tokens = tokens
        self.named = named or {}  # TypeDef names usable as member types
        self.pos = 0
        self.file = file
        self.what = what
        self.depth = 0  # of nested structs or initialiser braces

    def enter(self, tok: Token) -> None:
        """One level deeper (a nested struct or '{'), refused beyond :data:`MAX_NESTING`."""
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.error(f"nested more than {MAX_NESTING} levels deep", tok)

    @property
    def peek(self) -> Token:
        return self.tokens[self.pos]

    def next(self) -> Token:
        tok = self.tokens[self.pos]
        if tok.kind != "end":
            self.pos += 1
        return tok

    def accept(self, text: str) -> bool:
        if self.peek.text == text and self.peek.kind == "punct":
            self.pos += 1
            return True
        return False

    def error(self, msg: str, tok: Token | None = None) -> GraphError:
        tok = tok or self.peek
        return GraphError(f"{self.what}: {msg}", self.file, tok.line)

    def expect(self, text: str, context: str) -> Token:
        tok = self.next()
        if tok.text != text or tok.kind != "punct":
            raise self.error(f"expected {text!r} {context}, found {_shown(tok.text)}", tok)
        return tok


# ---- declarations ------------------------------------------------------------------------------

_REFUSED_WORDS = {
    "union": "unions are not supported (no POETS tool implements them)",
    "typedef": "typedefs are not supported in v4",
    "enum": "enums are not supported; use an integer type",
    "const": "qualifiers are not supported (properties are read-only anyway)",
    "volatile": "qualifiers are not supported",
    "unsigned": "use the fixed-width types (uint32_t, ...), not 'unsigned'",
    "signed": "use the fixed-width types (int32_t, ...), not 'signed'",
    "int": "use the fixed-width types (int32_t, ...), not 'int'",
    "long": "use the fixed-width types (int64_t, ...), not 'long'",
    "short": "use the fixed-width types (int16_t, ...), not 'short'",
    "bool": "bool is not a graph-schema type; use uint8_t",
}


def parse_struct(text: str | None, file: str | None, line: int | None, what: str,
                 named: Mapping[str, FieldType] | None = None) -> Struct:
    """Parse the member declarations of one v4 struct (``<Properties>``, ``<State>``, ``<Message>``).

    Args:
        text: the C declarations (CDATA of the element); empty or None gives an empty struct.
        file, line: where ``text`` starts, for error messages.
        what: names the element in messages, e.g. ``"<State> of device type 'cell'"``.
        named: the graph type's TypeDefs by id, usable as member types.
    """
    cur = _Cursor(tokenize(text or "", file, line, what), file, what, named)
    struct = Struct(_members(cur, closing=None))
    problem = size_problem(struct.as_tuple)
    if problem is not None:
        raise GraphError(f"{what}: {problem}", file, line)
    return struct


def _members(cur: _Cursor, closing: str | None) -> tuple[Field, ...]:
    fields: list[Field] = []
    while True:
        tok = cur.peek
        if closing is not None and cur.accept(closing):
            break
        if tok.kind == "end":
            if closing is not None:
                raise cur.error(f"missing {closing!r} to close the struct", tok)
            break
        for f in _declaration(cur):
            if any(g.name == f.name for g in fields):
                raise cur.error(f"duplicate member name {f.name!r}", Token("", "", f.line))
            fields.append(f)
    return tuple(fields)


def _declaration(cur: _Cursor) -> list[Field]:
    """One declaration: a type, one or more declarators, a semicolon."""
    tok = cur.next()
    base: FieldType
    if tok.kind == "ident" and tok.text == "struct":
        if cur.peek.kind == "ident":
            cur.next()  # a struct tag names nothing the generated code uses
        cur.enter(cur.expect("{", "after 'struct'"))
        members = _members(cur, closing="}")
        cur.depth -= 1
        if not members:
            raise cur.error("empty nested struct", tok)
        base = Tuple(members)
    elif tok.kind == "ident" and tok.text in V4_SCALARS:
        base = Scalar(tok.text)
    elif tok.kind == "ident" and tok.text in cur.named:
        base = cur.named[tok.text]
    elif tok.kind == "ident" and tok.text in _REFUSED_WORDS:
        raise cur.error(f"{_shown(tok.text)}: {_REFUSED_WORDS[tok.text]}", tok)
    elif tok.kind == "ident":
        raise cur.error(f"unknown type {_shown(tok.text)} (supported: {', '.join(V4_SCALARS)}, struct {{...}}"
                        + "".join(f", {n}" for n in cur.named) + ")", tok)
    else:
        raise cur.error(f"expected a member declaration (a type name or 'struct'), found {_shown(tok.text)}", tok)
    fields = [_declarator(cur, base)]
    while cur.accept(","):
        fields.append(_declarator(cur, base))
    tok = cur.peek
    if tok.text == "=":
        raise cur.error(f"member {fields[-1].name!r} has an initialiser; v4 declarations have no defaults "
                        "(give values in the instance's P/S attributes)", tok)
    if tok.text == ":":
        raise cur.error(f"member {fields[-1].name!r}: bit-fields are not supported", tok)
    cur.expect(";", f"after member {fields[-1].name!r}")
    return fields


def _declarator(cur: _Cursor, base: FieldType) -> Field:
    tok = cur.next()
    if tok.text == "*":
        raise cur.error("pointers are not supported in graph-schema data", tok)
    if tok.kind != "ident":
        raise cur.error(f"expected a member name, found {_shown(tok.text)}", tok)
    if tok.text in V4_SCALARS or tok.text in _REFUSED_WORDS or tok.text == "struct":
        raise cur.error(f"expected a member name, found the keyword {_shown(tok.text)}", tok)
    dims: list[int] = []
    while cur.accept("["):
        n = cur.next()
        try:
            length = int(n.text.rstrip("uUlL"), 0) if n.kind == "number" else 0
        except ValueError:
            length = 0
        if length <= 0:
            raise cur.error(f"array {_shown(tok.text)} needs a positive integer length, found {_shown(n.text)}", n)
        dims.append(length)
        cur.expect("]", f"after the length of array {_shown(tok.text)}")
    ftype = base
    for length in reversed(dims):  # int8_t v[2][3] is 2 arrays of 3
        ftype = Array(ftype, length)
    problem = size_problem(ftype)
    if problem is not None:
        raise cur.error(f"member {_shown(tok.text)}: {problem}", tok)
    return Field(tok.text, ftype, tok.line)


# ---- initialisers ------------------------------------------------------------------------------

Init: TypeAlias = "int | float | list[Init]"


def parse_initialiser(text: str, file: str | None, line: int | None, what: str) -> Init:
    """Parse a C brace initialiser (``{1, {2, 3}, -4.5e1, 7ull}``) into nested lists of numbers."""
    cur = _Cursor(tokenize(text, file, line, what), file, what)
    value = _init(cur)
    tok = cur.peek
    if tok.kind != "end":
        raise cur.error(f"unexpected {_shown(tok.text)} after the initialiser", tok)
    return value


def _init(cur: _Cursor) -> Init:
    tok = cur.next()
    if tok.text == "{" and tok.kind == "punct":
        cur.enter(tok)
        items: list[Init] = []
        while not cur.accept("}"):
            if cur.peek.text == ".":
                raise cur.error("designated initialisers (.name = value) are not supported; give values in "
                                "declaration order", cur.peek)
            items.append(_init(cur))
            if not cur.accept(","):
                if cur.peek.kind == "end":
                    raise cur.error("missing '}' at the end of the initialiser", cur.peek)
                if cur.peek.text != "}":
                    raise cur.error(f"expected ',' or '}}' in initialiser, found {_shown(cur.peek.text)}", cur.peek)
        cur.depth -= 1
        return items
    if tok.kind == "number":
        return _number(cur, tok)
    if tok.kind == "ident" and tok.text in ("true", "false"):
        return int(tok.text == "true")
    if tok.kind == "end":
        raise cur.error("initialiser ends early: missing '}'", tok)
    raise cur.error(f"expected a number or '{{' in initialiser, found {_shown(tok.text)}", tok)


def _number(cur: _Cursor, tok: Token) -> int | float:
    text = tok.text
    is_hex = text.lstrip("+-")[:2] in ("0x", "0X")
    body = text.rstrip("uUlL") if is_hex else text.rstrip("uUlLfF")
    suffix = text[len(body):].lower()
    is_float = not is_hex and any(c in body for c in ".eE")
    ok_suffixes = ("", "f") if is_float else ("", "u", "l", "ul", "lu", "ll", "ull", "llu")
    if suffix not in ok_suffixes:
        raise cur.error(f"bad number {_shown(text)} in initialiser", tok)
    try:
        if is_float:
            return float(body)
        if len(body.lstrip("+-")) > 1 and body.lstrip("+-")[0] == "0" and not is_hex:
            return int(body, 8)  # C: a leading 0 means octal
        return int(body, 0)
    except ValueError:
        raise cur.error(f"bad number {_shown(text)} in initialiser", tok) from None


def to_value(ftype: FieldType, init: Init, path: str, file: str | None, line: int | None, what: str) -> Any:
    """Match a parsed initialiser to its type: a dict per struct, a list per array, numbers for scalars.

    Shorter initialisers leave the rest zero (as in C); longer ones and missing braces are errors.
    """
    def fail(msg: str) -> GraphError:
        return GraphError(f"{what}: {path + ': ' if path else ''}{msg}", file, line)

    if isinstance(ftype, Scalar):
        if isinstance(init, list):  # C allows braces around a scalar: int x = {5};
            if len(init) != 1 or isinstance(init[0], list):
                raise fail(f"expected one number for {ftype.ctype}, got {len(init)} values in braces")
            init = init[0]
        return init
    if not isinstance(init, list):
        kind = "an array" if isinstance(ftype, Array) else "a struct"
        raise fail(f"expected '{{...}}' for {kind}, got {init!r}")
    if isinstance(ftype, Array):
        if len(init) > ftype.length:
            raise fail(f"{len(init)} values for an array of length {ftype.length}")
        return [to_value(ftype.element, v, f"{path}[{i}]", file, line, what) for i, v in enumerate(init)]
    members = ftype.members
    if len(init) > len(members):
        raise fail(f"{len(init)} values for a struct of {len(members)} members "
                   f"({', '.join(m.name for m in members) or 'none'})")
    return {m.name: to_value(m.type, v, f"{path}.{m.name}" if path else m.name, file, line, what)
            for m, v in zip(members, init)}


_INT = r"[-+]?(?:0|[1-9][0-9]*)(?:[uU](?:ll|LL|l|L)?|(?:ll|LL|l|L)[uU]?)?"
_FLAT_INTS = re.compile(r"\s*\{\s*(%s(?:\s*,\s*%s)*)?\s*,?\s*\}\s*$" % (_INT, _INT))


def flat_ints(text: str) -> list[int] | None:
    """The numbers of a flat all-decimal-integer initialiser (``{3, 1u}``), else None.

    The fast path for the millions of ``P="{i, 1}"`` a large instance holds; anything else
    (nesting, floats, hex, octal, errors) returns None and goes through :func:`parse_initialiser`.
    """
    m = _FLAT_INTS.match(text)
    if m is None:
        return None
    body = m.group(1)
    return [int(v.strip().rstrip("uUlL")) for v in body.split(",")] if body else []


def int_member_names(spec: Struct) -> tuple[str, ...] | None:
    """The member names if every member is an integer scalar (flat initialisers map onto them)."""
    if all(isinstance(f.type, Scalar) and not f.type.is_float for f in spec.fields):
        return tuple(f.name for f in spec.fields)
    return None


def parse_values(text: str | None, spec: Struct, file: str | None, line: int | None,
                 what: str) -> dict[str, Any] | None:
    """A v4 ``P``/``S`` attribute as the ``{member: value}`` dict ``values.Packer`` packs (None if absent)."""
    if text is None or not text.strip():
        return None
    init = parse_initialiser(text, file, line, what)
    value = to_value(spec.as_tuple, init, "", file, line, what)
    return value or None
