"""XML elements as every graph-schema version reads them: namespaces, tags, lines, value bodies.

The small helpers the type walker, the instance builder and the entry points share, so that
every error names a file and a line the same way (lxml-stubs types ``sourceline`` loosely:
:func:`line_of` is the one typed read of it).
"""
from __future__ import annotations

import json
import re
from typing import IO, Any

from lxml import etree

from pstack_tasks.exceptions import GraphError
from pstack_tasks.graph.app_file import CheckedGzip

#: root namespace -> graph-schema version
NAMESPACES = {
    "https://poets-project.org/schemas/virtual-graph-schema-v2": 2,
    "https://poets-project.org/schemas/virtual-graph-schema-v3": 3,
    "https://poets-project.org/schemas/virtual-graph-schema-v4": 4,
}
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: names the generated C++ cannot use for a type, pin or member (C++17's keywords and the
#: alternative operator spellings): refused when read, not as a compile error in generated code
CXX_KEYWORDS = frozenset("""
    alignas alignof and and_eq asm auto bitand bitor bool break case catch char char16_t char32_t
    class compl const constexpr const_cast continue decltype default delete do double dynamic_cast
    else enum explicit export extern false float for friend goto if inline int long mutable
    namespace new noexcept not not_eq nullptr operator or or_eq private protected public register
    reinterpret_cast return short signed sizeof static static_assert static_cast struct switch
    template this thread_local throw true try typedef typeid typename union unsigned using virtual
    void volatile wchar_t while xor xor_eq""".split())
#: xs:boolean's lexical forms
BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


def namespace_of(version: int) -> str:
    """The root namespace of graph-schema ``version``."""
    return next(ns for ns, v in NAMESPACES.items() if v == version)


def local(el: etree._Element) -> str:
    """The element's tag without its namespace ("" for comments and processing instructions).

    Read from the tag's text rather than through ``etree.QName``, which raises on a tag such as
    ``Sc:lar`` (a prefix no namespace declares: libxml2 keeps it in the name), so that such a file
    gets the loader's one-line error naming the element instead of a traceback.
    """
    tag = el.tag
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def namespace(el: etree._Element) -> str | None:
    """The element's namespace URI, or None; read from the tag's text for the same reason as
    :func:`local` (``etree.QName`` also raises on a namespace URI a flipped byte made invalid)."""
    tag = el.tag
    if not isinstance(tag, str) or not tag.startswith("{"):
        return None
    return tag[1:].rpartition("}")[0]


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


class JsonError(ValueError):
    """Text that is not a JSON value this reader takes; the message says why, in one line."""


def json_value(text: str) -> Any:
    """``json.loads``, with every way it can fail as a :class:`JsonError`: a syntax error, a
    number of more than 4300 digits (Python's limit), values nested past the recursion limit."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise JsonError(f"{e.msg} (column {e.colno})") from None
    except RecursionError:
        raise JsonError("values nested too deeply") from None
    except ValueError as e:  # int() refusing a number of more than sys.get_int_max_str_digits() digits
        raise JsonError(f"a number too long to read ({str(e).split(':')[0]})") from None


def parse_json_body(text: str | None, file: str, line: int | None, what: str) -> dict[str, Any]:
    """Parse a v2/v3 value body: a JSON object without its outer braces."""
    body = (text or "").strip()
    if not body:
        return {}
    if not body.startswith("{"):
        body = "{" + body + "}"
    try:
        value = json_value(body)
    except JsonError as e:
        raise GraphError(f"malformed {what}: {e} in {(text or '').strip()[:60]!r}", file, line) from None
    if not isinstance(value, dict):
        raise GraphError(f"malformed {what}: expected a list of \"name\": value pairs", file, line)
    return value


_CDATA_OPEN, _CDATA_CLOSE = b"<![CDATA[", b"]]>"


def syntax_error(e: etree.XMLSyntaxError, name: str, src: IO[bytes] | None = None) -> GraphError:
    """lxml's syntax error as ONE line naming the file and line once.

    libxml2 appends the offending content to some messages (an unfinished CDATA section quotes
    the handler code that follows it, over several lines): only the message's first line is kept.
    A gzip file found damaged is reported as such.  For an unfinished CDATA section the line is
    where it opened (libxml2 names the end of the file), found in ``src`` when it is given.
    """
    if isinstance(src, CheckedGzip):
        src.verify()  # a damaged gzip file: that is the error, not the XML it decompressed into
    line = e.position[0] if e.position else None
    msg = str(e.msg or e).split("\n", 1)[0].strip()
    msg = re.sub(r",? ?line \d+, column \d+$", "", msg).strip() or "not well-formed"
    if msg.startswith("CData section not finished") and src is not None:
        opened = unfinished_cdata_line(src)
        if opened is not None:
            return GraphError("malformed XML: CDATA section opened here is never closed (no ']]>' after it)",
                              name, opened)
    return GraphError(f"malformed XML: {msg}", name, line)


def unfinished_cdata_line(src: IO[bytes]) -> int | None:
    """The line of the first ``<![CDATA[`` with no ``]]>`` after it, if any."""
    src.seek(0)
    data = src.read()
    pos = 0
    while (start := data.find(_CDATA_OPEN, pos)) >= 0:
        end = data.find(_CDATA_CLOSE, start + len(_CDATA_OPEN))
        if end < 0:
            return data.count(b"\n", 0, start) + 1
        pos = end + len(_CDATA_CLOSE)
    return None
