"""The pcli session: a ptpython REPL with the built-ins, history, a banner, and its stack.

ptpython provides the terminal side (history, completion, colour, fish-like suggestions);
this module only chooses its settings, fills the namespace, and decides which fleet the
session talks to: ``PSTACK_REDIS_URL`` if set, else an embedded :class:`LocalStack` that
lives as long as the session (as ``pstack run`` does for one command).
"""
from __future__ import annotations

import logging
import os
import platform
import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pstack_tasks.ui.shell.comfort as comfort
from pstack_tasks.config import settings
from pstack_tasks.ui.shell.apps import devices, instance, messages, pp, read, unit
from pstack_tasks.ui.shell.batch_builtins import BATCH_BUILTINS
from pstack_tasks.ui.shell.builtins import PROCESS_BUILTINS, make_help
from pstack_tasks.ui.shell.live import LIVE_BUILTINS

logger = logging.getLogger(__name__)

def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("pstack-celery")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0.1.0"


VERSION = _version()
HISTORY_NAME = "pcli_history"


def history_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_STATE_HOME/pstack-celery/pcli_history``, else ``~/.local/state/pstack-celery/...``."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_STATE_HOME") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".local", "state")
    return Path(base) / "pstack-celery" / HISTORY_NAME


def builtin_functions() -> dict[str, Callable[..., Any]]:
    """Every built-in by name, in the order ``help()`` lists them (help itself included)."""
    fns: dict[str, Callable[..., Any]] = dict(PROCESS_BUILTINS)
    fns.update(BATCH_BUILTINS)
    fns.update(LIVE_BUILTINS)
    fns.update({"pp": pp, "read": read, "devices": devices, "messages": messages, "instance": instance,
                "unit": unit})
    fns["help"] = make_help(fns)
    return fns


def namespace() -> dict[str, Any]:
    """The REPL's globals: a fresh ``__main__``-like namespace with the built-ins in it."""
    import builtins as py_builtins
    ns: dict[str, Any] = {"__name__": "__main__", "__package__": None, "__doc__": None,
                          "__builtins__": py_builtins}
    ns.update(builtin_functions())
    return ns


def masked(url: str) -> str:
    """A Redis URL without its password, fit for a banner."""
    return re.sub(r"(//[^:/@]*:)[^@/]*@", r"\1***@", url)


def banner(where: str, fleet: Sequence[Mapping[str, Any]]) -> list[str]:
    """The lines printed at start: version, which fleet, what it holds, how to get help."""
    online = [w for w in fleet if w.get("alive")]
    kinds = sorted({w["engine"] for w in online})
    slots = sum(int(w["slots"]) for w in online)
    return [f"pcli {VERSION} - pstack-celery terminal (Python {platform.python_version()})",
            f"fleet: {where}",
            f"engines: {len(online)} online ({', '.join(kinds) or 'none'}), {slots} slots",
            "help lists the built-ins; top shows the fleet live; exit() or Ctrl-D quits."]


def _configure(color: bool, fns: Mapping[str, Callable[..., Any]]) -> Callable[[Any], None]:
    """ptpython's settings for pcli (applied to its PythonRepl before the first prompt), and its
    comforts (:mod:`.comfort`: bare names, one-line errors, Ctrl-C messages)."""
    def configure(repl: Any) -> None:
        comfort.install(repl, fns)
        from prompt_toolkit.formatted_text import StyleAndTextTuples
        from prompt_toolkit.output import ColorDepth
        from ptpython.prompt_style import PromptStyle

        class PcliPrompt(PromptStyle):
            def in_prompt(self) -> StyleAndTextTuples:
                return [("class:prompt", "pcli> ")]

            def in2_prompt(self, width: int) -> StyleAndTextTuples:
                return [("class:prompt.dots", "...> ".rjust(width))]

            def out_prompt(self) -> StyleAndTextTuples:
                return []

        repl.all_prompt_styles["pcli"] = PcliPrompt()
        repl.prompt_style = "pcli"
        repl.enable_auto_suggest = True          # fish-like suggestions from the history
        repl.enable_history_search = False       # keep completion while typing
        repl.complete_while_typing = True
        repl.show_docstring = False
        repl.show_signature = True
        repl.confirm_exit = False                # Ctrl-D quits at once, like python
        repl.insert_blank_line_after_output = False
        repl.title = "pcli"
        if not color:
            repl.enable_syntax_highlighting = False
            repl.color_depth = ColorDepth.DEPTH_1_BIT
    return configure


def start(quiet: bool = False, color: bool = True, engines: Sequence[str] = (), slots: int | None = None,
          history: Path | None = None, write: Callable[[str], None] = print,
          bind: Mapping[str, Any] | None = None, fleet: bool = True) -> None:
    """Run a pcli session until the user exits; tears down the embedded stack if it started one.

    ``bind``: more names for the session (``pstack debug`` binds ``s``); ``fleet=False``: a
    session that needs no fleet (the debugger's), so none is contacted or started."""
    from ptpython.repl import embed

    from pstack_tasks.fleet.client import engines as fleet_engines
    if not color:
        os.environ["NO_COLOR"] = "1"  # the libraries pcli prints through (rich for pp) honour it too
    history = history or history_path()
    history.parent.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        url = settings().redis_url
        if not fleet:
            where = "none (this session needs no fleet)"
        elif url:
            from pstack_tasks.fleet.store import ping
            ping()  # an unreachable fleet fails here, with the URL, not at the first command
            where = f"{masked(url)} (key prefix {settings().key_prefix})"
        else:
            from pstack_tasks.worker.local import LocalStack
            kinds = list(engines) or [settings().engine]
            n = slots or min(4, os.cpu_count() or 1)
            if not quiet:
                write(f"PSTACK_REDIS_URL is not set: starting an embedded stack ({', '.join(kinds)}, {n} slots)...")
            stack.enter_context(LocalStack(kinds, n))
            stack.callback(_kill_active)  # runs before the stack stops: workers would wait for their tasks
            where = (f"embedded on this machine (private redis-server, {', '.join(kinds)} x {n} slots); "
                     "it stops when pcli exits")
        if not quiet:
            show_banner(banner(where, fleet_engines() if fleet else []), color, write)
        ns = namespace()
        kept = comfort.variables_path(history_environ(history))
        restored = comfort.load_variables(ns, kept)
        if restored and not quiet:
            write(f"variables kept from the last session: {', '.join(restored)}")
        fns = {k: ns[k] for k in builtin_functions()}
        ns.update(bind or {})
        try:
            embed(globals=ns, history_filename=str(history), configure=_configure(color, fns), title="pcli")
        finally:
            comfort.save_variables(ns, kept, skip=fns)


def history_environ(history: Path) -> dict[str, str]:
    """The environment whose state directory holds ``history``: the variables are kept beside it."""
    return {"XDG_STATE_HOME": str(history.parent.parent)}


def _kill_active() -> None:
    """Kill the processes still active on an embedded stack that is about to stop."""
    from pstack_tasks.fleet.client import kill, ps
    from pstack_tasks.ui.columns import ACTIVE
    for p in ps():
        if p["state"] in ACTIVE:
            logger.info("pcli: killing process %s, the embedded stack is stopping", p["pid"])
            kill(p["pid"])


def show_banner(lines: list[str], color: bool, write: Callable[[str], None] = print) -> None:
    """The banner, its first line bold and its hint dim when colour is on (prompt_toolkit styles)."""
    if not color:
        for line in lines:
            write(line)
        return
    from prompt_toolkit import print_formatted_text
    from prompt_toolkit.formatted_text import FormattedText
    styles = ["bold"] + [""] * (len(lines) - 2) + ["italic fg:ansibrightblack"]
    print_formatted_text(FormattedText([(s, line + "\n") for s, line in zip(styles, lines)]), end="")
