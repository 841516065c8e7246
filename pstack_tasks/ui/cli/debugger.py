"""``pstack debug APP``: a step-debugger session over an application (docs/debugging.md, "The step
debugger"): a pcli session with ``s`` (and ``session``) bound to it, or, with ``-c CODE`` or a
SCRIPT file, that Python run against it (each top-level expression's value printed, as at the prompt)."""
from __future__ import annotations

import ast
import os
import traceback
from contextlib import closing
from typing import Any

import click

from pstack_tasks.exceptions import ConfigurationError, DebugError, PstackError
from pstack_tasks.ui.cli.common import configure_logging, friendly_errors, parse_rmap

CONTEXT = {"help_option_names": ["-h", "--help"]}


def run_code(code: str, name: str, ns: dict[str, Any]) -> None:
    """Run ``code`` in ``ns`` as pcli would: the value of each top-level expression is printed.
    An error of the code itself is one line naming where (``session.py:3: NameError: ...``)."""
    try:
        tree = ast.parse(code, name)
    except SyntaxError as e:
        raise ConfigurationError(f"{name}:{e.lineno}: {e.msg}") from None
    for stmt in tree.body:
        try:
            if isinstance(stmt, ast.Expr):
                value = eval(compile(ast.Expression(stmt.value), name, "eval"), ns)  # noqa: S307 - the user's code
                if value is not None:
                    click.echo(repr(value))
            else:
                exec(compile(ast.Module([stmt], []), name, "exec"), ns)  # noqa: S102 - the user's own code
        except (PstackError, KeyboardInterrupt):
            raise
        except Exception as e:
            lines = [f.lineno for f in traceback.extract_tb(e.__traceback__) if f.filename == name]
            raise DebugError(f"{name}:{lines[-1] if lines else stmt.lineno}: {type(e).__name__}: {e}") from None


def _namespace(session: Any) -> dict[str, Any]:
    """The names a script sees: pcli's built-ins where pcli is installed, and the session."""
    ns: dict[str, Any] = {"__name__": "__main__"}
    try:
        from pstack_tasks.ui.shell.repl import namespace
        ns = namespace()
    except ImportError:  # pcli's terminal libraries are an extra; a script needs none of them
        from pstack_tasks.native.debug import debug
        ns["debug"] = debug
    ns.update(s=session, session=session)
    return ns


@click.command(context_settings=CONTEXT)
@click.argument("app", type=click.Path(exists=True, dir_okay=False))
@click.argument("script", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("-c", "--command", "code", default=None, metavar="CODE",
              help="Python to run against the session s, e.g. -c 's.step(3); s.pending()'.")
@click.option("--rmap", default=None, help='Region map, JSON text or a file: {"n1": 1}. Each region steps on its own.')
@click.option("-l", "--level", type=int, default=1, show_default=True, help="handler_log level kept in the log.")
@click.option("-q", "--quiet", is_flag=True, help="No banner (interactive session).")
@click.option("-n", "--no-color", is_flag=True, help="No colour (also when NO_COLOR is set).")
@click.option("-d", "--debug", is_flag=True, help="Show tracebacks and debug logging.")
@friendly_errors("pstack")
def debug(app: str, script: str | None, code: str | None, rmap: str | None, level: int, quiet: bool,
          no_color: bool, debug: bool) -> None:
    """Step through APP's handlers: a pcli session with s bound to a debug session (s.step(), s.until(...),
    s.break_when(...), s.cont(), s.state(dev), s.pending(), s.inject(...), s.result()); with -c CODE or
    SCRIPT, that Python is run against s instead, and the command exits."""
    configure_logging(debug)
    if code is not None and script is not None:
        raise ConfigurationError("give -c CODE or a SCRIPT file, not both")
    from pstack_tasks.native.debug import debug as start_session
    with closing(start_session(app, parse_rmap(rmap) or None, level)) as session:
        if code is not None or script is not None:
            text = code if code is not None else open(script or "").read()
            run_code(text, "<-c>" if code is not None else os.path.basename(script or ""), _namespace(session))
            return
        from pstack_tasks.ui.extras import require_shell
        require_shell("pstack debug")
        from pstack_tasks.ui.shell import start
        if not quiet:
            click.echo(f"debug session of {app}: s (or session) is bound to it; s.log() shows where it is")
        color = not no_color and not os.environ.get("NO_COLOR")
        start(quiet=quiet, color=color, bind={"s": session, "session": session}, fleet=False)
