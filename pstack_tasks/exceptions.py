"""Project exceptions.

Every error a user can cause ends in one of these, with a message that names the
problem (file and line, device, handler) so it can be fixed without a traceback::

    PstackError
    ├── ConfigurationError      a bad or missing setting or option value; names the variable
    ├── GraphError              invalid application XML (file:line, element)
    ├── BuildError              the compiler rejected the generated engine
    ├── ServiceUnavailable      a service the stack talks to is missing, down or refused us
    │   └── RedisUnavailable    Redis (or its socat relay, or redis-server) cannot be reached,
    │                           or it refused the credentials of PSTACK_REDIS_URL
    ├── EngineError             the engine could not run or failed while running
    │   ├── SimulationFailed    a handler crashed, failed an assert, or the engine died
    │   ├── RegionStopped       a region was stopped because its process failed or was killed
    │   └── WorkerLost          a region's worker died or was stopped while the region ran
    ├── DebugError              a step-debugger session was asked what it cannot do (an unknown
    │                           device, pin or field, a value of the wrong type, a step after the end)
    └── ProcessError            a process (a run on the fleet) did not end Done
        ├── ProcessRefused      it can never run on this fleet (too few slots, unknown host)
        ├── ProcessNotFound     no process has that pid (never existed, or its record was flushed)
        │   └── BatchNotFound   no batch has that id (docs/batches.md)
        ├── ProcessFailed       it ended Failed or Killed; ``state``, ``reason`` and ``error`` say why
        └── PermissionDenied    the caller may not do that to this process (another user's)

The CLIs turn each family into one exit status (pstack_tasks/ui/cli/exit_status.py,
docs/exit-status.md).

Every exception rebuilds from its ``args``: ``type(e)(*e.args)`` is an equal exception.  Celery's
JSON result backend sends an exception as its class name and ``args`` and rebuilds it that way,
and pickle does the same (plus ``__dict__``), so ``args`` hold the constructor's arguments, not
the formatted message.  ``str(e)`` is the message a user reads.
"""
from __future__ import annotations


class PstackError(Exception):
    """Base class of every error this project raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigurationError(PstackError):
    """A setting is missing or malformed."""


class GraphError(PstackError):
    """The application file is malformed or inconsistent; ``file:line:`` prefixes the reason."""

    def __init__(self, reason: str, file: str | None = None, line: int | None = None) -> None:
        where = file or "<xml>"
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {reason}")
        self.args = (reason, file, line)
        self.file = file
        self.line = line
        self.reason = reason


class BuildError(PstackError):
    """The system compiler failed to build a generated engine."""


class ServiceUnavailable(PstackError):
    """A service the stack needs (Redis, its relay) is not installed, cannot be reached, or refused us.

    Not an engine error: nothing is wrong with the application or the engine, and the fix is
    in the environment (start Redis, correct PSTACK_REDIS_URL, install socat).
    """


class RedisUnavailable(ServiceUnavailable):
    """redis-server or socat is missing, the Redis server cannot be reached, or it refused the credentials."""


class EngineError(PstackError):
    """An engine could not be started or ended abnormally."""


class SimulationFailed(EngineError):
    """A simulation ended with an error (crash, assertion, engine failure)."""


class RegionStopped(EngineError):
    """A region's engine was stopped from outside: a peer failed, the process was killed."""


class WorkerLost(EngineError):
    """A region's worker died (SIGKILL, host gone) or was stopped while the region ran: not the
    application's fault, so a process with checkpoints recovers from it (docs/persistence.md)."""


class DebugError(PstackError):
    """A step-debugger session refused a request: an unknown device, pin or field, a value of the
    wrong type, or a step of a session that has ended (docs/debugging.md, "The step debugger")."""


class ProcessError(PstackError):
    """A process on the fleet could not be run or did not succeed."""


class ProcessRefused(ProcessError):
    """The process can never run on the fleet as it is (the message gives the numbers)."""


class ProcessNotFound(ProcessError):
    """No process has this pid."""


class BatchNotFound(ProcessNotFound):
    """No batch has that id (never existed, or its record has expired)."""


class ProcessFailed(ProcessError):
    """The process ended Failed or Killed.

    ``error`` names the project exception class of the first region failure when the fleet
    recorded one (``"BuildError"`` for a compile error), so a client can tell a handler that
    does not compile from one that crashed: :attr:`cause` is that class.
    """

    def __init__(self, pid: int, state: str, reason: str, error: str | None = None) -> None:
        super().__init__(f"process {pid} {state.lower()}: {reason}")
        self.args = (pid, state, reason, error)
        self.pid = pid
        self.state = state
        self.reason = reason
        self.error = error

    @property
    def cause(self) -> type[PstackError] | None:
        """The project exception class named by ``error``, or None (none recorded, or unknown)."""
        return error_class(self.error) if self.error else None


class PermissionDenied(ProcessError):
    """The caller may not act on this process: it belongs to another user and the caller is no admin."""


def error_class(name: str) -> type[PstackError] | None:
    """The project exception class called ``name``; None for any other name.

    Only classes of this module are found, so a name read from Redis can never reach
    another class.
    """
    found = globals().get(name)
    if isinstance(found, type) and issubclass(found, PstackError):
        return found
    return None


__all__ = [
    "PstackError", "ConfigurationError", "GraphError", "BuildError", "ServiceUnavailable", "RedisUnavailable",
    "EngineError", "SimulationFailed", "RegionStopped", "DebugError", "ProcessError", "ProcessRefused",
    "ProcessNotFound", "BatchNotFound", "ProcessFailed", "PermissionDenied", "error_class",
]
