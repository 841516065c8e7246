"""Render a graph type into the C++ source of its engine (jinja2, templates/engine.cpp.j2).

Only the graph *type* goes into the source, so every instance of a type, at any
size, shares one compiled engine.  Python computes the context (table offsets,
flattened message fields); the C++ text lives in the template.
"""
from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from pstack_tasks.graph.model import Array, Code, FieldType, GraphType, Scalar, Tuple
from pstack_tasks.native.engine_inputs import templates_dir
from pstack_tasks.native.protocol_cpp import protocol_defines

if TYPE_CHECKING:
    import jinja2

TYPE_HASH_PLACEHOLDER = "@@PSTACK_TYPE_HASH@@"
SOURCE_NAME = "app.xml"  # the application file as the compiler and assert() see it


@lru_cache(maxsize=1)
def _environment(path: str) -> jinja2.Environment:
    import jinja2  # here: a run whose engine is cached (native.engine_index) never renders
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(path), undefined=jinja2.StrictUndefined,
                             trim_blocks=False, lstrip_blocks=False, keep_trailing_newline=True,
                             autoescape=False)
    env.tests["scalar_type"] = lambda t: isinstance(t, Scalar)
    env.tests["array_type"] = lambda t: isinstance(t, Array)
    env.tests["tuple_type"] = lambda t: isinstance(t, Tuple)
    env.globals["dataclass_replace"] = dataclasses.replace
    return env


def flat_paths(ftype: FieldType, prefix: str) -> list[tuple[str, Scalar]]:
    """C access paths of every scalar of a member, in memory order (``a``, ``v[0]``, ``t.x``)."""
    if isinstance(ftype, Scalar):
        return [(prefix, ftype)]
    if isinstance(ftype, Array):
        out: list[tuple[str, Scalar]] = []
        for i in range(ftype.length):
            out += flat_paths(ftype.element, f"{prefix}[{i}]")
        return out
    out = []
    for m in ftype.members:
        out += flat_paths(m.type, f"{prefix}.{m.name}" if prefix else m.name)
    return out


@dataclass(frozen=True)
class CodeSpan:
    """Where one piece of application code sits in the XML, for mapping compiler messages."""

    device_type: str | None
    code: Code

    @property
    def first_line(self) -> int:
        """The XML line of the first non-blank line of the code (line 1 of the handler)."""
        text = self.code.text
        stripped = len(text) - len(text.lstrip())
        return self.code.line + text[:stripped].count("\n")

    @property
    def last_line(self) -> int:
        return self.code.line + self.code.text.count("\n")


@dataclass(frozen=True)
class EngineSource:
    """Rendered engine source plus what is needed to explain compiler errors."""

    text: str
    type_hash: str
    spans: tuple[CodeSpan, ...]
    file: str   # the name in #line directives (SOURCE_NAME)
    path: str   # the application file as the user named it, for messages


def code_spans(gt: GraphType) -> list[CodeSpan]:
    spans = [CodeSpan(None, c) for c in gt.shared_code]
    for d in gt.device_types:
        pieces = list(d.shared_code) + [d.ready_to_send]
        pieces += [p.on_send for p in d.output_pins] + [p.on_receive for p in d.input_pins]
        pieces += [c for c in (d.on_init, d.on_hardware_idle) if c is not None]
        spans += [CodeSpan(d.id, c) for c in pieces]
    if gt.supervisor is not None:
        s = gt.supervisor
        spans += [CodeSpan(None, c) for c in (s.code, s.properties, s.state, *s.handlers())]
    return spans


def render(gt: GraphType) -> EngineSource:
    """The engine source for a graph type; identical types give identical text (and hash)."""
    # One fixed name in #line directives keeps the source (and so the engine cache key) the same
    # whatever the application file is called; messages put the real path back.
    file = SOURCE_NAME
    out_base, in_base = [], []
    nout = nin = 0
    for d in gt.device_types:
        out_base.append(nout)
        in_base.append(nin)
        nout += len(d.output_pins)
        nin += len(d.input_pins)
    flat = {m.id: flat_paths(m.payload.as_tuple, "") for m in gt.message_types}
    context: dict[str, Any] = {
        "gt": gt,
        "file": file.replace("\\", "\\\\").replace('"', '\\"'),
        "type_hash": TYPE_HASH_PLACEHOLDER,
        "n_inputs_total": nin,
        "out_base": out_base,
        "in_base": in_base,
        "msg_index": {m.id: i for i, m in enumerate(gt.message_types)},
        "flat": flat,
        "max_msg_size": max([m.payload.size for m in gt.message_types] + [8]),
        "max_item_chars": 64 + 32 * max([len(v) for v in flat.values()] + [1]),
        "has_indexed": any(p.indexed for d in gt.device_types for p in d.output_pins),
        "has_hw_idle": any(d.on_hardware_idle for d in gt.device_types),
        "protocol": protocol_defines(),
        "handlers_may_stop": handlers_may_stop(gt),
        "out_only_input": out_only_inputs(gt),
        "input_pins": [(d, p) for d in gt.device_types for p in d.input_pins],
        **supervisor_context(gt),
        "init_pin": {d.id: (d.input_index("__init__") if gt.version == 2 and d.input_pin("__init__") else None)
                     for d in gt.device_types},
    }
    env = _environment(str(templates_dir()))
    text = env.get_template("engine.cpp.j2").render(**context)
    text = _resolve_line_resets(text, "engine.cpp")
    type_hash = hashlib.sha256(text.encode()).hexdigest()
    text = text.replace(TYPE_HASH_PLACEHOLDER, type_hash)
    return EngineSource(text, type_hash, tuple(code_spans(gt)), file, gt.file or file)


# Every way application code can end a run from inside a handler: handler_exit, and handler_log
# (whose exit-marker texts end it too, graph-schema.md s6).
_STOP_CALLS = re.compile(r"\bhandler_(?:exit|log)\b")


def handlers_may_stop(gt: GraphType) -> bool:
    """Whether any handler might stop the run: the engine's hot loop tests for a stop after each
    handler only then (pstack_loop.hpp).  A type with a supervisor always may (its API stops runs)."""
    return gt.supervisor is not None or any(_STOP_CALLS.search(s.code.text) for s in code_spans(gt))


def out_only_inputs(gt: GraphType) -> list[int | None]:
    """Per output pin over all types, the one input pin (index over all types) that takes its
    message type, when there is exactly one and it has no edge properties or state: a slot with one
    local edge into it is delivered by the destination alone (pstack_instance.hpp, flatten_slots).
    None otherwise, and for indexed pins and v2's ``__init__`` pins (delivered out of line)."""
    inputs = [(p.message_type, p.properties.size or p.state.size or p.supervisor
               or (gt.version == 2 and p.name == "__init__"))
              for d in gt.device_types for p in d.input_pins]
    out: list[int | None] = []
    for d in gt.device_types:
        for p in d.output_pins:
            takers = [i for i, (mt, _) in enumerate(inputs) if mt == p.message_type]
            plain = len(takers) == 1 and not inputs[takers[0]][1] and not p.indexed and not p.supervisor
            out.append(takers[0] if plain else None)
    return out


def supervisor_context(gt: GraphType) -> dict[str, Any]:
    """What supervisor.cpp.j2 needs: the reply/broadcast message type, each device type's supervisor pins."""
    none = "PSTACK_NO_SUPERVISOR_PIN"
    pins = {d.id: ([str(i) for i, p in enumerate(d.output_pins) if p.supervisor] + [none])[:1]
            + ([str(i) for i, p in enumerate(d.input_pins) if p.supervisor] + [none])[:1] for d in gt.device_types}
    replies = [p.message_type for d in gt.device_types for p in d.input_pins if p.supervisor]
    sup = gt.supervisor
    return {"sup_pins": pins, "sup_reply_type": replies[0] if replies else (sup.message_type if sup else "")}


def _resolve_line_resets(text: str, name: str) -> str:
    """Point the compiler back at the generated file after each inserted piece of XML code."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line == "#line RESET":
            lines[i] = f'#line {i + 2} "{name}"'
    return "\n".join(lines)

