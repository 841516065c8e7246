"""The engine protocol (:mod:`pstack_tasks.protocol`) as C++ text, for the engine template.

The protocol's names are defined once, in Python; every generated engine gets them as
``#define``s (``PSTACK_ITEM_MESSAGE``, ``PSTACK_EXIT_REASON_QUIESCENCE``, ``PSTACK_STATUS_IO``,
``PSTACK_METRIC_DELIVERED``, the key name formats, ...) and the runtime headers spell none of
them (``pstack_contract.hpp`` refuses an engine that leaves one out).  So a changed value
changes the rendered source, and with it the engine's cache key and type hash.

The IDLE script, the termination detector every region of a split calls through Redis
(docs/engine-protocol.md), is a Lua file shipped with the package (``native/lua/idle.lua``), rendered
with the item kinds it pushes and embedded into the engine as ``PSTACK_IDLE_SCRIPT``.
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources

from pstack_tasks import protocol
from pstack_tasks.protocol import EngineStatus, ExitReason, ItemKind, Metric, QueueKeys

#: the IDLE script's file, package data of pstack_tasks.native.lua
IDLE_SCRIPT_FILE = "idle.lua"


def c_string(text: str) -> str:
    """``text`` as a C string literal: quotes, backslashes, ``?`` (trigraphs) and every byte
    outside printable ASCII escaped; octal escapes are always three digits, so a digit that
    follows one cannot extend it."""
    out = []
    for byte in text.encode():
        ch = chr(byte)
        if ch in '"\\?':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif 0x20 <= byte < 0x7F:
            out.append(ch)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def c_char(text: str) -> str:
    """A one-character ASCII name as a C character literal (item kinds are compared byte-wise)."""
    if len(text) != 1 or not text.isascii() or not text.isprintable() or text in "'\\":
        raise ValueError(f"an item kind must be one plain ASCII character, not {text!r}")
    return f"'{text}'"


def _names(cls: type) -> dict[str, object]:
    """The upper-case class attributes of one protocol class, in definition order."""
    return {k: v for k, v in vars(cls).items() if k.isupper()}


def _key_formats() -> list[tuple[str, str]]:
    """The Redis key names as printf formats over (prefix, pid[, region]): QueueKeys's own
    names, with the formats in place of the values, so engines name keys as Python does."""
    keys = QueueKeys("%s", "%ld")
    return [("PSTACK_KEY_QUEUE_FMT", c_string(keys.queue("%d"))),
            ("PSTACK_KEY_ACTIVE_FMT", c_string(keys.active)),
            ("PSTACK_KEY_IDLE_FMT", c_string(keys.idle)),
            ("PSTACK_KEY_CALLS_FMT", c_string(keys.calls))]


@lru_cache(maxsize=1)
def protocol_defines() -> tuple[tuple[str, str], ...]:
    """Every protocol constant as (C macro name, C literal), in a fixed order."""
    defines: list[tuple[str, str]] = []
    defines += [(f"PSTACK_ITEM_{k}", c_char(str(v))) for k, v in _names(ItemKind).items()]
    defines += [(f"PSTACK_EXIT_REASON_{k}", c_string(v)) for k, v in _names(ExitReason).items()
                if isinstance(v, str)]
    defines += [("PSTACK_EXIT_SUCCESS_MARKER", c_string(protocol.EXIT_SUCCESS_MARKER)),
                ("PSTACK_EXIT_FAIL_MARKER", c_string(protocol.EXIT_FAIL_MARKER)),
                ("PSTACK_ENGINE_ERROR_PREFIX", c_string(protocol.ENGINE_ERROR_PREFIX)),
                ("PSTACK_LOG_LINE_PREFIX", c_string(protocol.LOG_LINE_PREFIX))]
    defines += [(f"PSTACK_STATUS_{k}", str(v)) for k, v in _names(EngineStatus).items() if isinstance(v, int)]
    defines += [(f"PSTACK_METRIC_{k}", c_string(str(v))) for k, v in _names(Metric).items()]
    defines += _key_formats()
    defines.append(("PSTACK_IDLE_SCRIPT", c_string(idle_script())))
    return tuple(defines)


@lru_cache(maxsize=1)
def idle_script() -> str:
    """The IDLE script's Lua text, with the protocol's item kinds filled in."""
    import jinja2  # here: only a render needs it (native.engine_index)
    source = resources.files("pstack_tasks.native.lua").joinpath(IDLE_SCRIPT_FILE).read_text(encoding="utf-8")
    template = jinja2.Template(source, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    text: str = template.render(item=ItemKind)
    return text
