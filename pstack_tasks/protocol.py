"""The engine protocol's names, defined once (docs/engine-protocol.md).

* :class:`QueueKeys`: the Redis keys engines of a split share.  Engines, the local runner and
  the fleet's ledger all name these keys; the C++ runtime builds the same names from the
  ``--prefix`` and ``--pid`` it is given.
* What engines say: item kinds, exit reasons, the handler-exit markers, the prefixes of their
  output lines, their exit statuses and the names of their metrics.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class QueueKeys:
    """The keys of one process's engines: ``<prefix><pid>.<region>`` message lists and the
    termination detector's ``.active``, ``.idle`` and ``.calls``."""

    prefix: str
    pid: int | str

    def queue(self, region: int | str) -> str:
        """List of items (messages and control items) waiting for a region."""
        return f"{self.prefix}{self.pid}.{region}"

    @property
    def active(self) -> str:
        """Count of regions busy or items in flight: zero means the process has ended."""
        return f"{self.prefix}{self.pid}.active"

    @property
    def idle(self) -> str:
        """The OnHardwareIdle round state shared by the regions."""
        return f"{self.prefix}{self.pid}.idle"

    @property
    def calls(self) -> str:
        """The number of the last IDLE script call that ran (its replies are skipped)."""
        return f"{self.prefix}{self.pid}.calls"

    def snapshot(self, token: str, region: int | str) -> str:
        """A region's dump for snapshot ``token`` (written by its engine while it pauses)."""
        return f"{self.prefix}{self.pid}.snap.{token}.{region}"

    def resume(self, token: str, region: int | str) -> str:
        """The list a region paused for snapshot ``token`` waits on (BLPOP) before it carries on."""
        return f"{self.prefix}{self.pid}.resume.{token}.{region}"

    def all(self, regions: list[int]) -> list[str]:
        """Every key of the process, for resetting before a run and deleting after it."""
        return [self.queue(r) for r in regions] + [self.active, self.idle, self.calls]


#: the counter a local run (``psim --rmap``) takes its pid from when it is given none, under the
#: run's prefix: the fleet's ``Keys.next_pid`` under its default ``PSTACK_KEY_PREFIX``, so local
#: runs and the fleet's processes never share queue names
PID_COUNTER: Final = "pstack:next_pid"


# ---- what engines say: item kinds, exit reasons, markers, output lines, statuses, metrics --------
# Defined here once: every generated engine gets them as #defines (native/protocol_cpp.py renders
# them into the template), and the C++ runtime uses those names, never the values.


class ItemKind:
    """The first number of an item in a region's queue: what the item is."""

    MESSAGE: Final = "0"          #: ``0 <device> <port> <nfields> <f1> ... <fn>``: a message
    STOP: Final = "1"             #: ``1 <code>``: another region called handler_exit (or hit a limit)
    QUIESCENT: Final = "2"        #: the whole process is quiescent: stop with the idle exit code
    INDEXED_MESSAGE: Final = "3"  #: ``3 <device> <port> <index> <nfields> ...``: a send over one edge
    HARDWARE_IDLE: Final = "4"    #: quiescent, and the type has OnHardwareIdle: run a round
    SUPERVISOR_REPLY: Final = "5"      #: ``5 <device> <nfields> ...``: the supervisor's reply to one device
    SUPERVISOR_BROADCAST: Final = "6"  #: ``6 <nfields> ...``: the supervisor's broadcast, to every local device
    SUPERVISOR_IDLE: Final = "7"       #: quiescent, and the supervisor has OnSupervisorIdle: run it
    SUPERVISOR_DONE: Final = "8"       #: the supervisor handled a message of this region's: carry on
    SNAPSHOT: Final = "9"         #: ``9 <token> <mode> <timeout>``: pause for a snapshot (docs/persistence.md)


class ExitReason:
    """Why a region stopped (the ``"Exit reason"`` metric)."""

    HANDLER_EXIT: Final = "handler_exit"  #: a handler of this region called handler_exit (or logged a marker)
    QUIESCENCE: Final = "quiescence"      #: nothing ready to send and nothing in flight, anywhere
    MAX_STEPS: Final = "max-steps"        #: ``--max-steps`` reached in this region
    TIME_LIMIT: Final = "time-limit"      #: ``--time-limit`` reached in this region
    REMOTE_STOP: Final = "remote stop"    #: another region stopped the run (item ``1``)

    #: reasons that say the stop began elsewhere, or nowhere: merging takes another region's word
    FOLLOWED: Final = (REMOTE_STOP, QUIESCENCE)


#: ``handler_log(0, marker)`` ends the run as ``handler_exit(0)`` / ``handler_exit(1)`` would
#: (graph_schema's ``fake_handler_exit``)
EXIT_SUCCESS_MARKER: Final = "_HANDLER_EXIT_SUCCESS_9be65737_"
EXIT_FAIL_MARKER: Final = "_HANDLER_EXIT_FAIL_9be65737_"

#: bytes before an instance file's graph properties: magic, version, type hash, four counts
HEADER_BYTES: Final = 4 + 4 + 64 + 16
#: where the type hash is in an instance file (64 bytes: :func:`type_hash_field`)
TYPE_HASH_AT: Final = 8


def type_hash_field(type_hash: str) -> bytes:
    """An engine's type hash as its instance files hold it: the engine refuses a file without it."""
    return type_hash.encode().ljust(64, b"\0")[:64]


#: how an engine's stderr line starts when it says why it fails (at most one, before a non-zero exit)
ENGINE_ERROR_PREFIX: Final = "pstack-engine: error: "
#: how a handler_log line starts (``Log [device n0, level 1]: ...``)
LOG_LINE_PREFIX: Final = "Log ["


class EngineStatus:
    """An engine's exit status."""

    OK: Final = 0
    USAGE: Final = 2    #: bad command line or instance file
    HANDLER: Final = 3  #: a handler crashed or failed an assertion
    IO: Final = 4       #: the Redis connection failed, or a remote item was malformed
    LIMIT: Final = 5    #: a resource limit (CPU, memory, file size) was exceeded


class Metric:
    """The names of the metrics in an engine's result (``result["metrics"]``)."""

    DELIVERED: Final = "Delivered messages"
    SENT: Final = "Sent messages"
    CANCELLED: Final = "Cancelled sends"
    REMOTE_SENT: Final = "Remote messages sent"
    REMOTE_RECEIVED: Final = "Remote messages received"
    SUPERVISOR_RECEIVED: Final = "Supervisor receives"  #: messages the v4 supervisor received
    SUPERVISOR_SENT: Final = "Supervisor sends"  #: replies and broadcasts the supervisor sent (one per call)
    EXIT_CODE: Final = "Exit code"
    EXIT_REASON: Final = "Exit reason"
    IDLE_ROUNDS: Final = "Hardware idle rounds"
    LOAD_SECONDS: Final = "Load seconds"
    RUN_SECONDS: Final = "Run seconds"
