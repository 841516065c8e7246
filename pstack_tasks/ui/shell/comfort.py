"""pcli's comforts over a plain Python prompt, as pstack's pcli had them (docs/pcli.md):

* bare names: ``ps``, ``top``, ``engines``, ``help`` typed alone run as if called (``pp`` alone
  pretty-prints the last value, ``_``), unless the name was given another value;
* expected errors (:class:`PstackError`) print as one line, never a traceback;
* Ctrl-C while ``run()`` or ``block()`` waits says that the process goes on and how to stop it;
* plain-data variables (numbers, strings, lists, dicts, ...) kept between sessions in a JSON
  file beside the history.

:func:`install` hooks them into ptpython's REPL object (its ``eval`` and error handlers).
"""
from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Mapping, MutableMapping
from pathlib import Path
from typing import Any

from pstack_tasks.exceptions import PstackError

logger = logging.getLogger(__name__)

#: built-ins that typed alone run as if called
SHORTCUTS = ("ps", "top", "engines", "help", "pp")
VARIABLES_NAME = "pcli_variables.json"
#: nesting and size bounds of a kept value: a variable worth keeping is small plain data
MAX_DEPTH, MAX_BYTES = 32, 1 << 20


def bare_call(line: str, ns: Mapping[str, Any], builtins: Mapping[str, Callable[..., Any]]) -> str:
    """The line to run for ``line``: ``ps`` becomes ``ps()`` when ``ps`` is still the built-in."""
    name = line.strip()
    if name not in SHORTCUTS or ns.get(name) is not builtins.get(name):
        return line
    if name == "pp":
        return "pp(_)" if "_" in ns else "help(pp)"
    return f"{name}()"


def error_line(e: BaseException) -> str:
    """An expected error as pcli prints it: its kind and message on one line."""
    return f"{type(e).__name__}: {e}".splitlines()[0] if str(e) else type(e).__name__


def install(repl: Any, builtins: Mapping[str, Callable[..., Any]]) -> None:
    """Hook the shortcuts, one-line errors and Ctrl-C messages into a ptpython ``PythonRepl``."""
    plain_eval, plain_exception = repl.eval, repl._handle_exception

    def eval_line(line: str) -> object:
        return plain_eval(bare_call(line, repl.get_globals(), builtins))

    def handle_exception(e: BaseException) -> None:
        if isinstance(e, PstackError):
            out = repl.app.output
            out.write(error_line(e) + "\n")
            out.flush()
            return
        plain_exception(e)

    def handle_interrupt(e: KeyboardInterrupt) -> None:
        out = repl.app.output
        out.write("\rKeyboardInterrupt" + (f": {e}" if str(e) else "") + "\n\n")
        out.flush()

    repl.eval = eval_line
    repl._handle_exception = handle_exception
    repl._handle_keyboard_interrupt = handle_interrupt


def interrupted(pids: list[int]) -> KeyboardInterrupt:
    """The KeyboardInterrupt that ``run()``/``block()`` raise: the process goes on, and how to stop it."""
    if not pids:
        return KeyboardInterrupt("the process goes on; ps() lists it and kill(pid) stops it")
    which = ", ".join(str(p) for p in pids)
    one = pids[0]
    return KeyboardInterrupt(f"process {which} goes on; block({one}) waits for it again, kill({one}) stops it")


# ---- variables kept between sessions ---------------------------------------------------------------


def variables_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_STATE_HOME/pstack-celery/pcli_variables.json`` (else ``~/.local/state/...``), beside the history."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_STATE_HOME") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".local", "state")
    return Path(base) / "pstack-celery" / VARIABLES_NAME


def is_plain(value: Any, depth: int = 0) -> bool:
    """Plain data: None, bools, numbers, strings, and lists, tuples and string-keyed dicts of them
    (a Future, a module or a function is not: it means nothing in the next session)."""
    if depth > MAX_DEPTH:
        return False
    if value is None or type(value) in (bool, int, str):
        return True
    if type(value) is float:
        return math.isfinite(value)
    if isinstance(value, (list, tuple)):  # a ps() table or a result record is a list or dict too
        return all(is_plain(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(type(k) is str and is_plain(v, depth + 1) for k, v in value.items())
    return False


def save_variables(ns: Mapping[str, Any], path: Path, skip: Mapping[str, Any]) -> list[str]:
    """Write the session's plain-data variables (not ``_``-names, not the built-ins); their names."""
    kept = {name: value for name, value in ns.items()
            if not name.startswith("_") and name not in skip and is_plain(value)}
    text = json.dumps(kept)
    if len(text) > MAX_BYTES:  # keep the small ones rather than none
        kept = {k: v for k, v in kept.items() if len(json.dumps(v)) <= MAX_BYTES // max(1, len(kept))}
        text = json.dumps(kept)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return sorted(kept)


def load_variables(ns: MutableMapping[str, Any], path: Path) -> list[str]:
    """Put the variables of the last session into ``ns`` (an unreadable file is ignored); their names."""
    try:
        kept = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as e:
        logger.warning("pcli: ignoring the variables in %s: %s", path, e)
        return []
    if not isinstance(kept, dict):
        return []
    names = [k for k in kept if isinstance(k, str) and k.isidentifier() and k not in ns]
    for k in names:
        ns[k] = kept[k]
    return sorted(names)


__all__ = ["SHORTCUTS", "bare_call", "error_line", "install", "interrupted", "variables_path", "is_plain",
           "save_variables", "load_variables"]
