"""Everything outside the graph type that decides what engine a build makes: where the C++
runtime and the templates are, the compiler and its flags, and a signature of all of them.

Kept apart from :mod:`~pstack_tasks.native.codegen` and :mod:`~pstack_tasks.native.build`, which
import the graph model: psim's warm start (:mod:`~pstack_tasks.native.warm_run`) checks that
nothing changed since a file's last run without importing the graph package at all.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
from functools import lru_cache
from pathlib import Path

from pstack_tasks.config import settings
from pstack_tasks.exceptions import ConfigurationError

# -static: a static engine starts in about a third of the time (no dynamic linking of libstdc++),
# which matters when small processes start by the hundred.  -fno-pie -no-pie: a static engine is
# loaded at a fixed address anyway; without position-independent code every handler's name and
# every global is an immediate, not a lea first (about 4 of the ~90 instructions of a delivery).
CXXFLAGS = ["-O2", "-std=gnu++17", "-fno-strict-aliasing", "-w", "-static", "-fno-pie", "-no-pie"]

_PACKAGE = Path(__file__).resolve().parent.parent
#: the Python files whose code decides what a graph type renders to
GENERATOR_FILES = ("native/codegen.py", "native/protocol_cpp.py", "native/build.py", "protocol.py")
GENERATOR_DIRS = ("graph", "native/lua")


def package_dir(package: str, *parts: str) -> Path:
    """A directory of package data, found without running the package's ``__init__``.

    Packages install as plain directories (the wheel is not zip-safe), so this is a real path
    the compiler can be given with ``-I``.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError(f"package {package} is not installed (reinstall pstack-celery)")
    return Path(list(spec.submodule_search_locations)[0]).joinpath(*parts)


# The C++ runtime ships with the psim engine (engines/psim/runtime/): found by name, never imported.
RUNTIME_DIR = package_dir("engines.psim", "runtime")


def templates_dir() -> Path:
    """Where the templates are: $PSTACK_TEMPLATES_DIR, else the package data
    ``pstack_tasks.templates`` (the repository's top-level templates/ directory)."""
    env = settings().templates_dir
    if env:
        path = Path(env)
        if not (path / "engine.cpp.j2").is_file():
            raise ConfigurationError(f"PSTACK_TEMPLATES_DIR={env} has no engine.cpp.j2")
        return path
    return package_dir("pstack_tasks.templates")


def compiler() -> str:
    """The C++ compiler engines are built with (PSTACK_CXX); ConfigurationError if it is missing."""
    cxx = settings().cxx
    if shutil.which(cxx) is None:
        raise ConfigurationError(f"C++ compiler {cxx!r} not found (set PSTACK_CXX or install g++)")
    return cxx


def signature(extra_dirs: tuple[str, ...] = ()) -> str:
    """Path, size and mtime of every file a render or build reads (and of the package
    directories ``extra_dirs``), the templates setting, the compiler binary and the flags.

    Any edit, reinstall or upgrade changes it; it is computed from file metadata, never contents,
    so it costs a few stat calls (cached per process and settings)."""
    cxx = compiler()
    return _signature(settings().templates_dir or "", os.path.realpath(shutil.which(cxx) or cxx), extra_dirs)


@lru_cache(maxsize=8)
def _signature(templates: str, cxx: str, extra_dirs: tuple[str, ...]) -> str:
    files = [_PACKAGE / name for name in GENERATOR_FILES]
    for d in (*GENERATOR_DIRS, *extra_dirs):
        files += sorted((_PACKAGE / d).iterdir())
    files += sorted(templates_dir().iterdir()) + sorted(RUNTIME_DIR.glob("*.hpp")) + [Path(cxx)]
    parts = [" ".join(CXXFLAGS), templates]
    for path in files:
        if path.is_file():
            st = path.stat()
            parts.append(f"{path}:{st.st_size}:{st.st_mtime_ns}")
    return "\n".join(parts)
