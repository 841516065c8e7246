"""The Redis key schema of the stack, in one place: every key's name, and the Celery queue names.

All keys start with ``PSTACK_KEY_PREFIX`` (default ``pstack:``), the broker's queues included
(Celery's ``global_keyprefix``), so two stacks, or a test run and a developer's stack, can share
one Redis database without seeing each other.  The engines' keys of one process are named by
:class:`pstack_tasks.protocol.QueueKeys` (the C++ runtime builds the same names); :meth:`Keys.queues`
hands them out under this prefix.  docs/fleet.md has the table of every key, its type and writer.
"""
from __future__ import annotations

from dataclasses import dataclass

from pstack_tasks.config import settings
from pstack_tasks.protocol import QueueKeys

#: the Celery queue of control workers (chord callbacks, the Flower API tasks, the reaper)
CONTROL_QUEUE = "control"


def engine_queue(engine: str) -> str:
    """The Celery queue every worker of an engine type consumes (``engine.<type>``)."""
    return f"engine.{engine}"


def host_queue(engine: str, host: str) -> str:
    """The Celery queue of one engine worker (``engine.<type>.<host>``): regions go there."""
    return f"engine.{engine}.{host}"


def engine_types_of(queue_names: list[str]) -> list[str]:
    """Engine types of the ``engine.<type>`` queues among ``queue_names``."""
    return sorted({q.split(".")[1] for q in queue_names if q.startswith("engine.") and q.count(".") == 1})


@dataclass(frozen=True)
class Keys:
    """The name of every key the stack uses, under one prefix."""

    prefix: str

    @classmethod
    def current(cls) -> Keys:
        return cls(settings().key_prefix)

    # processes
    @property
    def next_pid(self) -> str:
        """Counter: the last pid handed out."""
        return f"{self.prefix}next_pid"

    @property
    def procs(self) -> str:
        """Sorted set of every known pid (score: pid)."""
        return f"{self.prefix}procs"

    @property
    def running(self) -> str:
        """Set of the pids of running processes (the reaper's work list)."""
        return f"{self.prefix}running"

    def proc(self, pid: int | str) -> str:
        """Hash: the process record (user, graph, regions, state, times, reason, ...)."""
        return f"{self.prefix}proc:{pid}"

    def app(self, digest: str) -> str:
        """The application XML, stored once per content hash for workers on any host."""
        return f"{self.prefix}app:{digest}"

    def result(self, pid: int | str) -> str:
        """Hash region -> JSON ``{"states", "metrics", "host"}``: each region's part, written once by
        the region itself; readers merge the parts (:func:`records.read_result`)."""
        return f"{self.prefix}result:{pid}"

    def wake(self, pid: int | str) -> str:
        """List that gets an item when the process ends: waiters block on it without taking it."""
        return f"{self.prefix}wake:{pid}"

    def log(self, pid: int | str) -> str:
        """Stream of verbose log lines from the regions."""
        return f"{self.prefix}log:{pid}"

    def progress(self, pid: int | str) -> str:
        """Live counters per region: field ``<region>`` = ``"<delivered> <steps>"``."""
        return f"{self.prefix}progress:{pid}"

    def abort(self, pid: int | str) -> str:
        """The first cause of a failure or kill: set once, read by every region."""
        return f"{self.prefix}abort:{pid}"

    def lease(self, pid: int | str) -> str:
        """Hash region -> ``host|epoch``: the slots the process holds."""
        return f"{self.prefix}lease:{pid}"

    def started(self, pid: int | str) -> str:
        """Set of the regions that have begun (with a heartbeat)."""
        return f"{self.prefix}started:{pid}"

    def ended(self, pid: int | str) -> str:
        """Set of the regions that are over (slot given back)."""
        return f"{self.prefix}ended:{pid}"

    def exits(self, pid: int | str) -> str:
        """Hash region -> JSON ``{"Exit code", "Exit reason"}`` of each region that ended with a
        result: the last region to end reads them all and ends its process Done (worker/region.py)."""
        return f"{self.prefix}exits:{pid}"

    def usage(self, pid: int | str) -> str:
        """Hash region -> ``"<resident bytes> <CPU seconds>"`` of each running region's engine
        (worker/usage.py), refreshed by its guard about once a second."""
        return f"{self.prefix}usage:{pid}"

    def checkpoints(self, pid: int | str) -> str:
        """List of JSON ``{"id", "time", "size", "where", ...}``: a process's checkpoints, oldest first
        (fleet/persistence/checkpoints.py); kept after the process ends, for restart."""
        return f"{self.prefix}checkpoints:{pid}"

    def checkpoint(self, pid: int | str, checkpoint: int | str) -> str:
        """One checkpoint's resume file, when it is small enough to be kept in Redis."""
        return f"{self.prefix}checkpoint:{pid}:{checkpoint}"

    def recoveries(self, pid: int | str) -> str:
        """List of JSON ``{"time", "reason", "checkpoint"}``: each automatic recovery of a process."""
        return f"{self.prefix}recoveries:{pid}"

    def beat(self, pid: int | str, region: int | str) -> str:
        """A region's heartbeat: expires when the region stops refreshing it."""
        return f"{self.prefix}beat:{pid}:{region}"

    def client_beat(self, pid: int | str, region: int | str) -> str:
        """The heartbeat of a region a client's Python engine serves (``"<host> pid <n>"``, also
        kept in the record's ``client_host:<region>``): expires when that client is gone."""
        return f"{self.prefix}client-beat:{pid}:{region}"

    @property
    def reaper(self) -> str:
        """Lock: the worker that holds it runs the reaper for the whole fleet for a few seconds."""
        return f"{self.prefix}reaper"

    @property
    def stack_id(self) -> str:
        """The stack's run id, written at first use: a Redis restart that lost the data loses it too
        (:mod:`epoch`)."""
        return f"{self.prefix}stack_id"

    @property
    def queue_prefix(self) -> str:
        """Prefix of the engines' keys (``--prefix`` of an engine; see :meth:`queues`)."""
        return f"{self.prefix}q:"

    def queues(self, pid: int | str) -> QueueKeys:
        """The engine protocol's keys of one process: message lists ``<pid>.<region>``, ``<pid>.idle``,
        ``<pid>.active``, ``<pid>.calls`` (docs/engine-protocol.md).  The ledger's scripts reset them
        when a process is admitted and delete them when it ends."""
        return QueueKeys(self.queue_prefix, pid)

    # batches (fleet/batches/)
    @property
    def next_batch(self) -> str:
        """Counter: the last batch id handed out."""
        return f"{self.prefix}next_batch"

    @property
    def batches(self) -> str:
        """Sorted set of every known batch id (score: id)."""
        return f"{self.prefix}batches"

    def batch(self, batch_id: int | str) -> str:
        """Hash: the batch record (owner, group, app, grid, runs, times, killed_by)."""
        return f"{self.prefix}batch:{batch_id}"

    def batch_runs(self, batch_id: int | str) -> str:
        """Hash run index -> JSON ``{"params", "run", "seed", "pid"}``: each run as submitted."""
        return f"{self.prefix}batch-runs:{batch_id}"

    def batch_ended(self, batch_id: int | str) -> str:
        """Hash run index -> JSON ``{"state", "metrics", "elapsed", "reason"}``: each ended run's
        outcome, kept by whoever read it first (it outlives the process's own record)."""
        return f"{self.prefix}batch-ended:{batch_id}"

    # the fleet
    @property
    def engine_types(self) -> str:
        """Set of every engine type that ever registered a worker."""
        return f"{self.prefix}engines"

    def cap(self, engine: str) -> str:
        """Hash host -> slots of every registered worker of an engine type."""
        return f"{self.prefix}cap:{engine}"

    def used(self, engine: str) -> str:
        """Hash host -> slots in use."""
        return f"{self.prefix}used:{engine}"

    def info(self, engine: str) -> str:
        """Hash host -> JSON description (node name, pid, started) for ``engines()``."""
        return f"{self.prefix}info:{engine}"

    def alive(self, engine: str, host: str) -> str:
        """A worker's heartbeat (its epoch), expiring unless refreshed."""
        return f"{self.prefix}alive:{engine}@{host}"

    def epoch(self, engine: str, host: str) -> str:
        """The epoch of a worker's registration: a restarted worker gets a new one."""
        return f"{self.prefix}epoch:{engine}@{host}"

    def serves(self, engine: str) -> str:
        """Hash host -> JSON ``{"groups": [...], "users": [...]}`` of the workers that serve only
        those groups and users (``pstack worker --group/--user``); a worker not in it serves everyone."""
        return f"{self.prefix}serves:{engine}"

    def waiting(self, engine: str) -> str:
        """Sorted set of the pids waiting for slots, scored by turn: round-robin per user, each
        user's first come first served (fleet/lua/lib.lua ``enqueue``)."""
        return f"{self.prefix}waiting:{engine}"

    def fair(self, engine: str) -> str:
        """Hash of the turns of admission: ``clock`` (the last admitted process's turn), and per user the
        number of waiting processes ``n:<user>`` and the last turn given ``last:<user>``."""
        return f"{self.prefix}fair:{engine}"


__all__ = ["Keys", "CONTROL_QUEUE", "engine_queue", "host_queue", "engine_types_of"]
