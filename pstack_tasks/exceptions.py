"""Project exceptions.

Every error a user can cause ends in one of these, with a message that names the
problem (file and line, device, handler) so it can be fixed without a traceback::

    PstackError
    ├── ConfigurationError      a bad or missing setting; names the variable
    ├── GraphError              invalid application XML (file:line, element)
    ├── BuildError              the compiler rejected the generated engine
    └── EngineError             the engine could not run or failed while running
        ├── SimulationFailed    a handler crashed, failed an assert, or the engine died
        ├── RedisUnavailable    the message fabric (redis-server / socat) is missing or down
        └── RegionStopped       a region was stopped because its process failed or was killed
    ProcessError                a process (a run on the fleet) did not end Done
    ├── ProcessRefused          it can never run on this fleet (too few slots, unknown host)
    ├── ProcessNotFound         no process has that pid (never existed, or its record was flushed)
    ├── ProcessFailed           it ended Failed or Killed; ``state`` and ``reason`` say why
    └── PermissionDenied        the caller may not do that to this process (another user's)
"""
from __future__ import annotations


class PstackError(Exception):
    """Base class of every error this project raises on purpose."""

    def __init__(self, message: str, *args: object) -> None:
        super().__init__(message, *args)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigurationError(PstackError):
    """A setting is missing or malformed."""


class GraphError(PstackError):
    """The application file is malformed or inconsistent."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None) -> None:
        where = file or "<xml>"
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {message}", file, line)
        self.file = file
        self.line = line
        self.reason = message


class BuildError(PstackError):
    """The system compiler failed to build a generated engine."""


class EngineError(PstackError):
    """An engine could not be started or ended abnormally."""


class SimulationFailed(EngineError):
    """A simulation ended with an error (crash, assertion, engine failure)."""


class RedisUnavailable(EngineError):
    """redis-server or socat is missing, or the Redis server cannot be reached."""


class RegionStopped(EngineError):
    """A region's engine was stopped from outside: a peer failed, the process was killed."""


class ProcessError(PstackError):
    """A process on the fleet could not be run or did not succeed."""


class ProcessRefused(ProcessError):
    """The process can never run on the fleet as it is (the message gives the numbers)."""


class ProcessNotFound(ProcessError):
    """No process has this pid."""


class ProcessFailed(ProcessError):
    """The process ended Failed or Killed."""

    def __init__(self, pid: int, state: str, reason: str) -> None:
        super().__init__(f"process {pid} {state.lower()}: {reason}", pid, state, reason)
        self.pid = pid
        self.state = state
        self.reason = reason


class PermissionDenied(ProcessError):
    """The caller may not act on this process: it belongs to another user and the caller is no admin."""
