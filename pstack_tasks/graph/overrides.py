"""Overrides: a run's changes to the values of a parsed application, made without re-parsing it
or compiling anything (docs/batches.md, "Overrides").

A key names one member of the packed instance:

======================  =========================================================
``graph:NAME``          a graph property
``type:TYPE.NAME``      a device property, for every device of device type TYPE
``device:ID.NAME``      a device property, for device ID only
``state:TYPE.NAME``     an initial state member, for every device of type TYPE
======================  =========================================================

:func:`resolve` checks keys and values against the graph type (an unknown name or a value of
the wrong type is a :class:`GraphError` naming the key) and turns them into a :class:`Patch`:
byte writes into the instance file's sections.  The graph type is untouched, so the engine is
the one already built for it; graph properties are instance data too (the engine reads them from
the instance file), so they are patched like the rest.  The native stage applies the patch to
each run's instance file (``native/instance_file.py``, :func:`patch_instance`).
"""
from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pstack_tasks.exceptions import GraphError
from pstack_tasks.graph.application import Application
from pstack_tasks.graph.model import DeviceType, GraphType, Struct
from pstack_tasks.graph.values import Packer, ValueError_

#: the kinds of key, as written before the colon
KINDS = ("graph", "type", "device", "state")
#: the graph property ``--seeds`` sets
SEED_PROPERTY = "seed"
SYNTAX = "use graph:NAME, type:TYPE.NAME, device:ID.NAME or state:TYPE.NAME"


@dataclass(frozen=True)
class Write:
    """Bytes written into one section of the instance file.

    ``section`` is ``"graph"`` (the graph properties), ``"props"`` or ``"state"`` (the per-type
    sections of device type number ``type_index``); ``device`` is the device's number in the
    whole instance for one device, None for every device of the type; ``offset`` is the
    member's byte offset in its struct.
    """

    section: str
    type_index: int
    device: int | None
    offset: int
    data: bytes


@dataclass(frozen=True)
class Patch:
    """What a run's overrides write into its instance file: every device of a type first, then
    single devices (so ``device:`` beats ``type:`` for its device)."""

    writes: tuple[Write, ...]
    digest: str  # names the patched instance file in caches ("" for no overrides)

    def __bool__(self) -> bool:
        return bool(self.writes)


NO_PATCH = Patch((), "")


def parse_value(text: str) -> Any:
    """A value as typed on a command line: JSON (``10``, ``2.5``, ``[1, 2]``, ``true``), else the
    text itself (a string, for a ``char`` array)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_assignment(text: str) -> tuple[str, str]:
    """``KEY=V`` split at the first ``=`` (the value still text); a missing ``=`` is refused."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise GraphError(f"override {text!r}: expected KEY=VALUE ({SYNTAX})")
    return key.strip(), raw


def resolve(app: Application, overrides: Mapping[str, Any] | None) -> Patch:
    """The patch for ``overrides`` (``{key: value}``) on ``app``.

    Raises:
        GraphError: a key is malformed or names nothing in the graph type or instance, or a
            value does not fit its member; the message names the key.
    """
    if not overrides:
        return NO_PATCH
    # one device's value wins over its type's, whichever was given first
    writes = tuple(sorted((_write(app, str(key), value) for key, value in overrides.items()),
                          key=lambda w: w.device is not None))
    text = json.dumps([[k, v] for k, v in overrides.items()], sort_keys=True, default=str)
    return Patch(writes, hashlib.sha256(text.encode()).hexdigest()[:16])


def check(app: Application, overrides: Mapping[str, Any] | None) -> None:
    """Raise GraphError naming the key if any override does not apply to ``app``."""
    resolve(app, overrides)


def seed_key(gt: GraphType, file: str | None = None) -> str:
    """The override key a run's seed is written to (``graph:seed``).

    Raises:
        GraphError: the graph type has no ``seed`` graph property.
    """
    if gt.properties.field(SEED_PROPERTY) is None:
        have = ", ".join(f.name for f in gt.properties.fields) or "none"
        raise GraphError(f"seeds need a graph property {SEED_PROPERTY!r}, and graph type {gt.id!r} has none "
                         f"(graph properties: {have})", file)
    return f"graph:{SEED_PROPERTY}"


def _write(app: Application, key: str, value: Any) -> Write:
    kind, sep, rest = key.partition(":")
    file = app.file
    if not sep or kind not in KINDS:
        raise GraphError(f"override {key!r}: unknown kind {kind!r} ({SYNTAX})", file)
    gt = app.graph_type
    if kind == "graph":
        offset, data = _member(gt.properties, rest, value, key, f"graph type {gt.id!r}", "graph property", file)
        return Write("graph", -1, None, offset, data)
    owner, dot, name = rest.rpartition(".")
    if not dot or not owner or not name:
        raise GraphError(f"override {key!r}: expected {kind}:{'ID' if kind == 'device' else 'TYPE'}.NAME", file)
    device = None
    if kind == "device":
        device = app.instance.index.get(owner)
        if device is None:
            raise GraphError(f"override {key!r}: no device {owner!r} in graph instance {app.instance.id!r}", file)
        t = _type_of_device(app, device)
    else:
        t = _type_index(gt, owner, key, file)
    dt: DeviceType = gt.device_types[t]
    section, spec, what = ("state", dt.state, "state member") if kind == "state" else \
        ("props", dt.properties, "property")
    offset, data = _member(spec, name, value, key, f"device type {dt.id!r}", what, file)
    return Write(section, t, device, offset, data)


def _type_index(gt: GraphType, type_id: str, key: str, file: str) -> int:
    for i, d in enumerate(gt.device_types):
        if d.id == type_id:
            return i
    known = ", ".join(d.id for d in gt.device_types)
    raise GraphError(f"override {key!r}: graph type {gt.id!r} has no device type {type_id!r} "
                     f"(device types: {known})", file)


def _type_of_device(app: Application, device: int) -> int:
    """The device type number of device number ``device`` (read from a native loader's file when
    the instance is one: Python then holds no per-device types)."""
    inst = app.instance
    if len(inst.dev_type) > device:
        return int(inst.dev_type[device])
    assert inst.packed is not None
    with open(inst.packed.path, "rb") as f:
        f.seek(inst.packed.regions_at - 4 * (inst.device_count - device))
        return int(struct.unpack("<I", f.read(4))[0])


def _member(spec: Struct, name: str, value: Any, key: str, owner: str, what: str, file: str) -> tuple[int, bytes]:
    """(byte offset, packed bytes) of member ``name`` of ``spec`` holding ``value``."""
    offset = 0
    for f in spec.fields:
        if f.name == name:
            try:
                data = Packer(Struct((f,))).pack({name: value})
            except ValueError_ as e:
                raise GraphError(f"override {key!r}: {e}", file) from None
            return offset, data
        offset += Struct((f,)).size
    have = ", ".join(f.name for f in spec.fields) or "none"
    plural = {"graph property": "graph properties", "property": "properties"}.get(what, what + "s")
    raise GraphError(f"override {key!r}: {owner} has no {what} {name!r} ({plural}: {have})", file)


__all__ = ["KINDS", "SEED_PROPERTY", "Write", "Patch", "NO_PATCH", "parse_value", "parse_assignment", "resolve",
           "check", "seed_key"]
