"""What every command shares: one-line errors with exit statuses by error family (:mod:`.exit_status`),
``--version``, and logging setup.

Nothing here imports click at module level: ``psim`` parses its flags with argparse and must not
pay for click's import (docs/psim.md, "Start-up")."""
from __future__ import annotations

import functools
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pstack_tasks.exceptions import ConfigurationError, PstackError
from pstack_tasks.ui.cli import exit_status as status

F = TypeVar("F", bound=Callable[..., Any])

#: the distribution whose version ``--version`` prints (from its installed metadata)
DISTRIBUTION = "pstack-celery"


def version_option() -> Callable[[F], F]:
    """``--version``: the installed distribution's version, e.g. ``psim 0.1.0``."""
    import click
    return click.version_option(package_name=DISTRIBUTION, message="%(prog)s %(version)s")


def installed_version() -> str:
    """This distribution's installed version (read from its metadata: only when asked for)."""
    from importlib.metadata import version
    return version(DISTRIBUTION)


def configure_logging(debug: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                        format="%(asctime)s %(process)d %(name)s %(levelname)s: %(message)s")


def friendly_errors(prog: str) -> Callable[[F], F]:
    """Turn project errors into ``prog: error: ...`` and an exit status; ``debug=True`` shows tracebacks."""
    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            debug = bool(kwargs.get("debug"))
            try:
                return fn(*args, **kwargs)
            except PstackError as e:
                if debug:
                    raise
                print(f"{prog}: error: {e}", file=sys.stderr, flush=True)
                sys.exit(status.exit_status(e))
            except KeyboardInterrupt as e:  # its text, if any, says what was done about it
                print(f"{prog}: interrupted" + (f": {e}" if str(e) else ""), file=sys.stderr, flush=True)
                sys.exit(status.INTERRUPTED)
            except BrokenPipeError:  # ``psim app.xml | head``: stop quietly (the engine is gone already)
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit's flush
                sys.exit(status.BROKEN_PIPE)
        return run  # type: ignore[return-value]
    return wrap


def parse_rmap(value: str | None) -> dict[str, int]:
    """A region map from JSON text or a JSON file: ``{"n1": 1, "n2": 1}``."""
    if not value:
        return {}
    text = value
    if not value.lstrip().startswith("{"):
        path = Path(value)
        if not path.is_file():
            raise ConfigurationError(f"--rmap {value!r} is neither JSON nor an existing file")
        text = path.read_text()
    try:
        rmap = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigurationError(f"--rmap is not valid JSON: {e.msg} (column {e.colno})") from None
    if not isinstance(rmap, dict):
        raise ConfigurationError('--rmap must be a JSON object such as {"n1": 1}')
    return rmap


def parse_options(items: Sequence[str]) -> dict[str, Any]:
    """``--option KEY=VALUE`` options as engine options ``{key: value}`` (each value JSON, else text)."""
    from pstack_tasks.graph.overrides import parse_value
    options: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigurationError(f"--option {item!r}: expected KEY=VALUE")
        options[key] = parse_value(raw)
    return options


def parse_sets(items: Sequence[str]) -> dict[str, Any]:
    """``--set KEY=V`` options as overrides ``{key: value}`` (each value JSON, else text)."""
    if not items:
        return {}
    from pstack_tasks.graph.overrides import parse_assignment, parse_value  # here: psim's warm start has none
    out: dict[str, Any] = {}
    for item in items:
        key, raw = parse_assignment(item)
        out[key] = parse_value(raw)
    return out
