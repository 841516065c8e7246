"""Read a graph-schema file: find its version, then stream it into a graph type and an instance.

Instances can hold millions of devices, so the file is read once with ``lxml.etree.iterparse``
and each ``DevI``/``EdgeI`` is handed to the version's instance builder and freed at once:
memory grows with the data, not with XML objects.  :data:`FORMATS` is the one table of what
reads each version; nothing else in the package branches on the version number.
"""
from __future__ import annotations

import io
import os
from typing import IO, NamedTuple

from lxml import etree

from pstack_tasks.exceptions import GraphError
from pstack_tasks.graph.app_file import open_app, xml_bytes
from pstack_tasks.graph.application import Application, Instance, region_array
from pstack_tasks.graph.elements import NAMESPACES, line_of, local, namespace, syntax_error
from pstack_tasks.graph.instance import InstanceBuilder
from pstack_tasks.graph.model import GraphType
from pstack_tasks.graph.v3 import V2Types, V3Types
from pstack_tasks.graph.v4 import InstanceBuilderV4, V4Types
from pstack_tasks.graph.walker import GraphTypeWalker, graph_type_in_file

__all__ = ["FORMATS", "Application", "Format", "Instance", "detect_version", "load", "load_count",
           "load_graph_type", "region_array"]


class Format(NamedTuple):
    """What reads one graph-schema version."""

    type_parser: type[GraphTypeWalker]
    instance_builder: type[InstanceBuilder]


#: graph-schema version -> (type parser, instance builder)
FORMATS: dict[int, Format] = {
    2: Format(V2Types, InstanceBuilder),
    3: Format(V3Types, InstanceBuilder),
    4: Format(V4Types, InstanceBuilderV4),
}
#: the elements the streaming reader hands to the builder
_TAGS = ("GraphType", "DevI", "ExtI", "EdgeI", "GraphInstance", "GraphTypeReference")


def _source(xml_or_path: str | bytes | os.PathLike[str]) -> tuple[IO[bytes], str]:
    """An iterparse source and a name for messages, from XML text (or its gzip bytes) or a path
    (of a plain or gzip-compressed file: decompressed as it is read)."""
    if isinstance(xml_or_path, bytes):
        return io.BytesIO(xml_bytes(xml_or_path)), "<xml>"
    text = os.fspath(xml_or_path)
    if text.lstrip().startswith("<"):
        return io.BytesIO(text.encode()), "<xml>"
    if not os.path.exists(text):
        raise GraphError("no such file", text)
    try:
        return open_app(text), text  # opened here so that load() always closes it
    except OSError as e:
        raise GraphError(f"cannot read the file: {e.strerror}", text) from None


def detect_version(src: IO[bytes], name: str) -> tuple[str, int]:
    """The root namespace and schema version (2, 3 or 4) of a file."""
    try:
        for _, el in etree.iterparse(src, events=("start",), huge_tree=True):
            ns, tag, line = namespace(el), local(el), line_of(el)
            if tag != "Graphs":
                raise GraphError(f"root element is <{tag}>, expected <Graphs>", name, line)
            if ns is None:
                raise GraphError("<Graphs> has no xmlns namespace; expected one of: " + ", ".join(NAMESPACES),
                                 name, line)
            if ns not in NAMESPACES:
                raise GraphError(f"unknown namespace {ns!r}; expected one of: " + ", ".join(NAMESPACES), name, line)
            return ns, NAMESPACES[ns]
    except etree.XMLSyntaxError as e:
        raise syntax_error(e, name, src) from None
    raise GraphError("empty document", name)


class _LoadCount:
    """How many applications this process has parsed with :func:`load` (a batch parses its file
    once, however many runs it submits: tests read :func:`load_count` to check it)."""

    value = 0


def load_count() -> int:
    """How many times :func:`load` has parsed an application in this process."""
    return _LoadCount.value


def load(xml_or_path: str | bytes | os.PathLike[str]) -> Application:
    """Parse an application file (or XML text) into its graph type and packed instance."""
    _LoadCount.value += 1
    src, name = _source(xml_or_path)
    with src:
        ns, version = detect_version(src, name)
        fmt = FORMATS[version]
        builder = fmt.instance_builder(name, fmt.type_parser)
        q = "{%s}" % ns
        src.seek(0)
        try:
            for _, el in etree.iterparse(src, events=("end",), tag=[q + t for t in _TAGS], huge_tree=True,
                                         remove_comments=True):
                tag = el.tag[len(q):]
                if tag in ("DevI", "ExtI"):
                    builder.device(el)
                elif tag == "EdgeI":
                    builder.edge(el)
                else:
                    builder.other(tag, el)
                    continue
                el.clear()
                parent = el.getparent()
                while el.getprevious() is not None:
                    del parent[0]
        except etree.XMLSyntaxError as e:
            raise syntax_error(e, name, src) from None
    return builder.finish()


def graph_type_ahead(path: str) -> tuple[GraphType, int] | None:
    """The graph type of an application file and its version, read without its instance (the
    native loader packs that): None when the file is not the plain shape (one ``<GraphType>``
    before the ``<GraphInstance>``, no reference) or has any error, so that the whole file is
    then read by :func:`load`, which names the first error as always."""
    try:
        with open_app(path) as src:
            ns, version = detect_version(src, path)
            src.seek(0)
            q = "{%s}" % ns
            found = None
            for event, el in etree.iterparse(src, events=("start", "end"), huge_tree=True, remove_comments=True):
                tag = el.tag[len(q):] if isinstance(el.tag, str) and el.tag.startswith(q) else ""
                if event == "start" and tag == "GraphInstance":
                    return (found, version) if found is not None else None
                if tag in ("DevI", "EdgeI", "ExtI", "GraphTypeReference") or (tag == "GraphType" and event == "start"
                                                                                and found is not None):
                    return None
                if event == "end" and tag == "GraphType":
                    found = FORMATS[version].type_parser(path).parse(el)
    except (GraphError, etree.XMLSyntaxError, OSError):
        return None
    return None


def load_graph_type(path: str, gid: str, version: int, referrer: str, line: int | None) -> GraphType:
    """The graph type ``gid`` from another file (a ``GraphTypeReference`` with ``src``)."""
    return graph_type_in_file(path, gid, FORMATS[version].type_parser, referrer, line)
