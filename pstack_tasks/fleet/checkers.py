"""pstack's checker files: load one safely, collect its checks, apply them to a result.

The convention is pstack's: beside ``app.xml`` sits ``app.py`` whose functions take the result
dict and ``assert``; the docstring names the check.  Every public function of one argument is
a check, unless the file defines ``check_*`` functions: then only those are.  A check may take
a second parameter, the parsed application (:class:`~pstack_tasks.fleet.app_view.AppView`), to
compute what to expect.  A check passes unless it raises or returns ``False``.

A checker file that does not compile or fails to import is one line naming the file and line
(:class:`CheckerFileError`), never a traceback: the file is the user's, and so is the fix.
"""
from __future__ import annotations

import hashlib
import inspect
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

from pstack_tasks.exceptions import PstackError
from pstack_tasks.fleet.app_view import AppView

#: the prefix that marks checks when a file has any
PREFIX = "check_"


class CheckerFileError(PstackError):
    """A checker file cannot be read, does not compile, fails on import, or defines no checks."""


@dataclass(frozen=True)
class Checker:
    """One check: its function, the name users read (its docstring), and whether it takes the app."""

    name: str
    doc: str
    fn: Callable[..., object]
    wants_app: bool
    line: int


@dataclass(frozen=True)
class CheckOutcome:
    """A check applied to one result: passed or not, why not, and how long it took."""

    name: str
    doc: str
    passed: bool
    message: str
    seconds: float


def _module_name(py: Path) -> str:
    digest = hashlib.sha1(str(py.resolve()).encode()).hexdigest()[:10]
    stem = "".join(c if c.isalnum() else "_" for c in py.stem)
    return f"pstack_checks.{stem}_{digest}"


def _line_in(tb: TracebackType | None, py: Path) -> int | None:
    """The last line of ``py`` in a traceback (where a check or the import failed)."""
    line = None
    for frame in traceback.extract_tb(tb):
        if Path(frame.filename) == py:
            line = frame.lineno
    return line


def load_module(py: str | Path) -> ModuleType:
    """Compile and run a checker file as a module of its own (its directory importable meanwhile)."""
    path = Path(py)
    try:
        source = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise CheckerFileError(f"{path}: cannot read the checker file: {getattr(e, 'strerror', None) or e}") from None
    try:
        code = compile(source, str(path), "exec")
    except SyntaxError as e:
        raise CheckerFileError(f"{path}:{e.lineno or '?'}: syntax error in the checker file: {e.msg}") from None
    module = ModuleType(_module_name(path))
    module.__file__ = str(path)
    sys.modules[module.__name__] = module  # dataclasses and pickling look a class's module up there
    sys.path.insert(0, str(path.parent))
    try:
        exec(code, module.__dict__)
    except (Exception, SystemExit) as e:  # the user's code: any failure is one line naming it
        sys.modules.pop(module.__name__, None)
        where = _line_in(e.__traceback__, path)
        raise CheckerFileError(f"{path}:{where or '?'}: the checker file fails on import: "
                               f"{type(e).__name__}: {e}") from None
    finally:
        sys.path.remove(str(path.parent))
    return module


def _arity(fn: Callable[..., object]) -> tuple[int, list[str]]:
    """Required positional parameters, and the names of all positional ones."""
    params = [p for p in inspect.signature(fn).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in params if p.default is p.empty]
    return len(required), [p.name for p in params]


def describe(fn: Callable[..., object], name: str) -> str:
    """The check's name as users read it: its docstring's first line without the final period
    (pstack's), else the function's name without ``check_``."""
    doc = (inspect.getdoc(fn) or "").strip().splitlines()
    text = doc[0].strip() if doc else ""
    return (text[:-1] if text.endswith(".") else text) or name.removeprefix(PREFIX) or name


def collect(module: ModuleType) -> list[Checker]:
    """The checks of a loaded checker file, in the order they are defined."""
    path = Path(module.__file__ or "?")
    funcs = [(n, f) for n, f in vars(module).items()
             if inspect.isfunction(f) and f.__module__ == module.__name__ and not n.startswith("_")]
    prefixed = [(n, f) for n, f in funcs if n.startswith(PREFIX)]
    checks = []
    for name, fn in prefixed or funcs:
        required, names = _arity(fn)
        line = fn.__code__.co_firstlineno
        if required == 1 or (required == 0 and names):
            wants_app = False
        elif required == 2 and (prefixed or names[1] == "app"):
            wants_app = True
        elif prefixed:
            raise CheckerFileError(f"{path}:{line}: {name} takes {required} arguments; "
                                   "a check takes (result) or (result, app)")
        else:
            continue  # a helper, not a check
        checks.append(Checker(name, describe(fn, name), fn, wants_app, line))
    if not checks:
        raise CheckerFileError(f"{path}: no checks: define check_<name>(result) functions "
                               "(or public functions of one argument, pstack's convention)")
    return sorted(checks, key=lambda c: c.line)


def load_checkers(py: str | Path) -> list[Checker]:
    """Load a checker file and collect its checks (:class:`CheckerFileError` if it cannot be)."""
    return collect(load_module(py))


def _failure(e: BaseException, fn: Callable[..., object]) -> str:
    """Why a check failed, in one line: its assertion message (or the assert itself) and where."""
    file = Path(fn.__code__.co_filename)
    frames = [f for f in traceback.extract_tb(e.__traceback__) if Path(f.filename) == file]
    where = f" [{file.name}:{frames[-1].lineno}]" if frames else ""
    text = " ".join(str(e).split())
    if isinstance(e, AssertionError):
        if not text and frames and frames[-1].line:
            text = f"failed: {frames[-1].line.strip()}"
        return (text or "assertion failed") + where
    return f"{type(e).__name__}: {text}".rstrip(": ") + where


def apply(checks: list[Checker], result: Mapping[str, Any], app: AppView | None) -> list[CheckOutcome]:
    """Every check applied to ``result`` (none stops the others, unlike pstack's tester)."""
    out = []
    for c in checks:
        start = time.perf_counter()
        try:
            ok = (c.fn(result, app) if c.wants_app else c.fn(result)) is not False
            message = "" if ok else "returned False"
        except Exception as e:  # a failing check is a result to report, not an error of the runner
            ok, message = False, _failure(e, c.fn)
        out.append(CheckOutcome(c.name, c.doc, ok, message, time.perf_counter() - start))
    return out
