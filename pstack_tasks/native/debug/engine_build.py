"""The debug engine of a graph type: its generated engine with the step debugger's main.

The source is the graph type's engine source exactly as psim's engine is rendered
(:func:`pstack_tasks.native.codegen.render`), with its ``main`` renamed away and the debugger's
C++ appended (``debug_scheduler.cpp``: one event per step; ``debug_commands.cpp``: the commands
from Python, and main): the same handlers, tables and dispatch functions, driven one event
at a time.  It is built through the ordinary build cache (:func:`~pstack_tasks.native.build.build_engine`),
so it compiles once per graph type and host, and compiler errors read as psim's do.
"""
from __future__ import annotations

import dataclasses
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

from pstack_tasks.graph.model import GraphType
from pstack_tasks.native import build, codegen

#: Prepended to the generated source: its main becomes an ordinary function, and the #line puts
#: the compiler's line numbers back where they were (messages about the generated file stay right).
_PROLOGUE = '#define main pstack_engine_main\n#line 1 "engine.cpp"\n'


#: the step debugger's C++, in the order it is appended (package data beside this module)
DEBUG_SOURCES = ("debug_scheduler.cpp", "debug_commands.cpp")


@lru_cache(maxsize=1)
def debug_source() -> str:
    """The step debugger's C++, each file after a #line naming it (compiler messages point there)."""
    here = files("pstack_tasks.native.debug")
    return "".join(f'\n#line 1 "{name}"\n' + here.joinpath(name).read_text() for name in DEBUG_SOURCES)


def build_debug_engine(gt: GraphType) -> tuple[Path, str]:
    """The compiled debug engine of ``gt`` and the type hash its instance files carry.

    Raises:
        BuildError: a handler does not compile (named as psim names it).
    """
    source = codegen.render(gt)
    text = _PROLOGUE + source.text + debug_source()
    engine = build.build_engine(dataclasses.replace(source, text=text))
    return engine, source.type_hash
