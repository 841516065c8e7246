"""XML elements as every graph-schema version reads them: namespaces, tags, lines, value bodies.

The small helpers the type walker, the instance builder and the entry points share, so that
every error names a file and a line the same way (lxml-stubs types ``sourceline`` loosely:
:func:`line_of` is the one typed read of it).
"""
from __future__ import annotations

import json
import re
from typing import Any

from lxml import etree

from pstack_tasks.exceptions import GraphError

#: root namespace -> graph-schema version
NAMESPACES = {
    "https://poets-project.org/schemas/virtual-graph-schema-v2": 2,
    "https://poets-project.org/schemas/virtual-graph-schema-v3": 3,
    "https://poets-project.org/schemas/virtual-graph-schema-v4": 4,
}
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: xs:boolean's lexical forms
BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


def namespace_of(version: int) -> str:
    """The root namespace of graph-schema ``version``."""
    return next(ns for ns, v in NAMESPACES.items() if v == version)


def local(el: etree._Element) -> str:
    """The element's tag without its namespace ("" for comments and processing instructions)."""
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def line_of(el: etree._Element | None) -> int | None:
    """The element's line in its file, if known."""
    line: object = el.sourceline if el is not None else None
    return line if isinstance(line, int) else None


def children(el: etree._Element) -> list[etree._Element]:
    """Element children, skipping comments and processing instructions."""
    return [c for c in el if isinstance(c.tag, str)]


def element_text(el: etree._Element, file: str) -> str:
    """An element's text (C code or declarations) with comments blanked to newlines, so that
    offsets into it still give file lines; a child element is refused (it would hide code)."""
    parts = [el.text or ""]
    for c in el:
        if isinstance(c.tag, str):
            raise GraphError(f"unexpected <{local(c)}> inside <{local(el)}> (expected C text)", file, line_of(c))
        parts.append("\n" * (c.text or "").count("\n"))
        parts.append(c.tail or "")
    return "".join(parts)


def parse_json_body(text: str | None, file: str, line: int | None, what: str) -> dict[str, Any]:
    """Parse a v2/v3 value body: a JSON object without its outer braces."""
    body = (text or "").strip()
    if not body:
        return {}
    if not body.startswith("{"):
        body = "{" + body + "}"
    try:
        value = json.loads(body)
    except json.JSONDecodeError as e:
        raise GraphError(f"malformed {what}: {e.msg} (column {e.colno}) in {(text or '').strip()[:60]!r}",
                         file, line) from None
    if not isinstance(value, dict):
        raise GraphError(f"malformed {what}: expected a list of \"name\": value pairs", file, line)
    return value


def syntax_error(e: etree.XMLSyntaxError, name: str) -> GraphError:
    """lxml's syntax error as a GraphError naming the file and line once."""
    line = e.position[0] if e.position else None
    msg = re.sub(r", line \d+, column \d+$", "", str(e.msg or e))
    return GraphError(f"malformed XML: {msg}", name, line)
