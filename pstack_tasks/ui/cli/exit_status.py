"""The one table of exit statuses shared by ``psim``, ``pstack`` and ``pcli`` (docs/exit-status.md).

A script can tell from the status alone what to fix: the command line, the application, the
handlers' C++, or the environment.  The table maps exception families, not commands, so the
same error exits with the same status whichever command met it.  A process that failed on the
fleet carries the family of its first region failure (``ProcessFailed.cause``): a handler that
does not compile exits 4 from ``pstack run`` as from ``psim``.
"""
from __future__ import annotations

from pstack_tasks.exceptions import (
    BuildError,
    ConfigurationError,
    GraphError,
    ProcessFailed,
    PstackError,
    ServiceUnavailable,
)

OK = 0
#: the simulation or process failed: a handler crashed or failed an assert, an engine died, the
#: process was killed, refused or is unknown, or the caller may not act on it
FAILED = 1
#: bad command line, including an APP file that does not exist (click's own status for usage errors)
USAGE = 2
#: the application is invalid: XML, schema, values, a region map naming an unknown device
GRAPH = 3
#: a handler (or shared code) does not compile
BUILD = 4
#: environment: a bad setting or option value, no compiler, Redis / socat / redis-server missing,
#: unreachable or refusing the credentials
ENVIRONMENT = 5
#: interrupted (Ctrl-C)
INTERRUPTED = 130
#: the output's reader went away (``psim app.xml | head``): as a shell tool killed by SIGPIPE
BROKEN_PIPE = 141

#: family -> status, most specific first; any other PstackError is FAILED
BY_FAMILY: tuple[tuple[type[PstackError], int], ...] = (
    (GraphError, GRAPH),
    (BuildError, BUILD),
    (ServiceUnavailable, ENVIRONMENT),
    (ConfigurationError, ENVIRONMENT),
)


def exit_status(error: PstackError) -> int:
    """The exit status for ``error``: by its family, or by the family that failed its process."""
    family: type[PstackError] = type(error)
    if isinstance(error, ProcessFailed) and error.cause is not None:
        family = error.cause
    for base, status in BY_FAMILY:
        if issubclass(family, base):
            return status
    return FAILED


__all__ = ["OK", "FAILED", "USAGE", "GRAPH", "BUILD", "ENVIRONMENT", "INTERRUPTED", "BY_FAMILY", "exit_status"]
