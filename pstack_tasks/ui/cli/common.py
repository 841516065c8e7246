"""What every command shares: one-line errors with exit codes by error family, and logging setup."""
from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from pstack_tasks.exceptions import BuildError, ConfigurationError, GraphError, PstackError, RedisUnavailable

#: exit status per error family (documented in docs/psim.md)
EXIT_OK = 0
EXIT_SIMULATION = 1
EXIT_USAGE = 2
EXIT_GRAPH = 3
EXIT_BUILD = 4
EXIT_ENVIRONMENT = 5
EXIT_INTERRUPTED = 130

F = TypeVar("F", bound=Callable[..., Any])


def exit_status(e: PstackError) -> int:
    if isinstance(e, GraphError):
        return EXIT_GRAPH
    if isinstance(e, BuildError):
        return EXIT_BUILD
    if isinstance(e, (RedisUnavailable, ConfigurationError)):
        return EXIT_ENVIRONMENT
    return EXIT_SIMULATION  # SimulationFailed and any other engine error


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
                click.echo(f"{prog}: error: {e}", err=True)
                sys.exit(exit_status(e))
            except KeyboardInterrupt:
                click.echo(f"{prog}: interrupted", err=True)
                sys.exit(EXIT_INTERRUPTED)
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
