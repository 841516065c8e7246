"""A process's first cause of failure, with a code that says what kind of cause it is.

Users read the cause as text (``region 1 on w2 stopped responding (its worker was lost)``);
the fleet decides by its code, never by the words: the code is the name of the project exception
class of the cause, stored in the process record's ``error`` field together with the first cause
(one script, so no reader sees the cause without its code).  A lost worker's code is
``WorkerLost``: the one cause automatic recovery resumes from (fleet/persistence/recovery.py),
while a handler crash (``SimulationFailed``), a limit or a kill keeps ending the process.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pstack_tasks.config import settings
from pstack_tasks.exceptions import WorkerLost
from pstack_tasks.fleet.keys import Keys
from pstack_tasks.fleet.scripts import source

#: the code of a region lost with its worker (SIGKILL, host gone, the worker stopped under it)
WORKER_LOST = WorkerLost.__name__


@dataclass(frozen=True)
class Cause:
    """Why a process fails: the one line users read, and its code (None: an unclassified error)."""

    text: str
    code: str | None = None

    @classmethod
    def worker_lost(cls, text: str) -> Cause:
        return cls(text, WORKER_LOST)


def record_first(r: Any, keys: Keys, pid: int, cause: Cause) -> str:
    """Make ``cause`` the process's first cause (its abort flag) and its code the record's
    ``error``, unless a first cause is there already; the first cause's text either way."""
    script = r.register_script(source("first_cause"))
    first = script(keys=[keys.abort(pid), keys.proc(pid)],
                   args=[cause.text, int(settings().result_expires), cause.code or ""])
    return first.decode() if isinstance(first, bytes) else str(first)


def is_worker_loss(record: Mapping[str, str]) -> bool:
    """Whether a process record's first cause of failure is a lost worker (not its application's fault)."""
    return record.get("error") == WORKER_LOST


__all__ = ["Cause", "WORKER_LOST", "record_first", "is_worker_loss"]
