"""Worker-side membership of the fleet, connected to Celery's worker signals.

An engine worker is any ``celery -A pstack_tasks.celery_app worker`` consuming a queue
``engine.<type>``: when it is ready it registers ``<type>@<host>`` (host: the part of its
node name after ``@``) with as many slots as its concurrency, starts consuming its own
queue ``engine.<type>.<host>`` and the ``control`` queue (so any worker can end a process
Done: no separate control worker is needed), and keeps a heartbeat key alive while it lives.
A worker serves every process, or only those of the groups and users it was started with
(``pstack worker --group/--user``: ``PSTACK_WORKER_GROUPS``/``PSTACK_WORKER_USERS``,
fleet/matching.py); the ledger places regions only on workers that serve their process.
A second worker under a name that a live worker holds is refused and stops.  Every worker runs
the reaper, which ends processes whose workers vanished; a lock in Redis lets one at a time.
A worker that begins a warm shutdown leaves the ledger at once and stops the regions it still
runs before Celery's soft shutdown timeout.
"""
from __future__ import annotations

import logging
import os
import shutil
import signal
import threading
import time
import uuid
from typing import Any

from celery import signals

from pstack_tasks.celery_app import app
from pstack_tasks.config import settings
from pstack_tasks.fleet import epoch, store
from pstack_tasks.fleet.causes import Cause, record_first
from pstack_tasks.fleet.dispatch import pump
from pstack_tasks.fleet.keys import CONTROL_QUEUE, Keys, engine_types_of, host_queue
from pstack_tasks.fleet.ledger import Ledger
from pstack_tasks.fleet.lifecycle import reap_all, trim_index
from pstack_tasks.fleet.matching import worker_serving
from pstack_tasks.native.procs import die_with_parent

logger = logging.getLogger(__name__)
REAP_INTERVAL = 1.0
#: seconds between two tidyings of the process index (entries whose records expired)
TRIM_INTERVAL = 60.0
_state: dict[str, Any] = {}


@signals.worker_ready.connect  # type: ignore[untyped-decorator]
def _on_ready(sender: Any = None, **_: Any) -> None:
    consumer = sender
    names = [q.name for q in consumer.task_consumer.queues]
    host = consumer.hostname.split("@", 1)[-1]
    types = engine_types_of(names)
    halt = threading.Event()
    _state["halt"] = halt
    if types:
        if len(types) > 1:
            logger.error("worker %s consumes several engine types %s; it registers only %s",
                         consumer.hostname, types, types[0])
        for queue in (host_queue(types[0], host), CONTROL_QUEUE):  # every worker can merge (docs/fleet.md)
            if queue not in names:
                consumer.add_task_queue(queue)
        member = Member(types[0], host, int(consumer.controller.concurrency), consumer.hostname)
        if not member.join():
            _refuse(member)
            return
        _state["member"] = member
        threading.Thread(target=member.keep_alive, args=(halt,), daemon=True, name="pstack-heartbeat").start()
    threading.Thread(target=_reaper, args=(halt, consumer.hostname), daemon=True, name="pstack-reaper").start()


def _refuse(member: Member) -> None:
    """Another live worker holds this worker's name: say so and stop (a second registration
    under one name would overwrite the first one's slots)."""
    held = Ledger.of(store.client(), Keys.current()).holder(member.engine, member.host) or {}
    logger.critical("worker name %s@%s is taken by a running worker (%s, pid %s): give this one another "
                    "name (pstack worker --name, or celery -n %s@OTHER); stopping", member.engine, member.host,
                    held.get("node", "?"), held.get("os_pid", "?"), member.engine)
    os.kill(os.getpid(), signal.SIGTERM)


@signals.worker_shutting_down.connect  # type: ignore[untyped-decorator]
def _on_shutting_down(**_: Any) -> None:
    """A warm shutdown begins (SIGTERM, Ctrl-C): leave admission at once, so nothing new is sent
    here, and stop the regions still running before Celery's soft shutdown timeout ends."""
    member = _state.pop("member", None)
    halt = _state.get("halt")
    if halt is not None:
        halt.set()
    if member is not None:  # not in the signal handler itself: it may have interrupted a Redis call
        threading.Thread(target=member.leave, daemon=True, name="pstack-leave").start()


@signals.worker_shutdown.connect  # type: ignore[untyped-decorator]
def _on_shutdown(**_: Any) -> None:
    halt = _state.pop("halt", None)
    if halt is not None:
        halt.set()
    member = _state.pop("member", None)
    if member is not None:
        try:
            member.unregister()
        except Exception as e:  # Redis gone: the heartbeat expiring says the same
            logger.warning("could not unregister %s: %s", member.host, e)


@signals.worker_process_init.connect  # type: ignore[untyped-decorator]
def _on_child(**_: Any) -> None:
    """A pool process: no Redis connections shared with the parent, and death with the worker
    (idle pool processes would otherwise outlive a SIGKILLed worker; the engine of a busy one
    dies with it, and the peers name the lost region from its missing heartbeat)."""
    store.reset_clients()
    die_with_parent()


class Member:
    """This worker's registration: slots in the ledger, and the heartbeat that keeps them."""

    def __init__(self, engine: str, host: str, slots: int, node: str) -> None:
        self.engine, self.host, self.slots, self.node = engine, host, slots, node
        self.serving = worker_serving()
        self.epoch = uuid.uuid4().hex
        self.ttl = settings().heartbeat_ttl
        #: seconds running regions get to end after a warm shutdown begins (then they are stopped)
        self.grace = max(1.0, float(app.conf.worker_soft_shutdown_timeout or 10.0) - 2.0)

    def _ledger(self) -> Ledger:
        return Ledger.of(store.client(), Keys.current())

    def join(self) -> bool:
        """Register; a name held by a live worker is waited for one heartbeat TTL (a worker killed
        just before this one started leaves its registration that long).  False: still taken."""
        deadline = time.monotonic() + self.ttl + 1.0
        while not self.register():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.25)
        return True

    def register(self) -> bool:
        epoch.ensure(store.client(), Keys.current())
        info = {"node": self.node, "os_pid": os.getpid(), "since": round(time.time(), 3),
                "cxx": shutil.which(settings().cxx), "socat": shutil.which("socat"),  # for pstack doctor
                "serves": self.serving.text()}
        if not self._ledger().register(self.engine, self.host, self.slots, self.epoch, self.ttl, info, self.serving):
            return False
        logger.info("registered %s@%s with %d slots, serving %s", self.engine, self.host, self.slots,
                    self.serving.text())
        pump(self.engine)
        return True

    def keep_alive(self, halt: threading.Event) -> None:
        while not halt.wait(self.ttl / 4):
            try:
                if not self._ledger().beat(self.engine, self.host, self.epoch, self.ttl):
                    self._rejoin()
            except Exception as e:
                logger.warning("heartbeat of %s@%s failed: %s", self.engine, self.host, e)

    def _rejoin(self) -> None:
        """The registration is gone: Redis lost it (restarted), or its heartbeat expired while
        Redis was unreachable.  Register again (refused if another worker took the name since)."""
        logger.warning("registration of %s@%s was lost (Redis restarted or unreachable for %g s): "
                       "registering again", self.engine, self.host, self.ttl)
        if not self.register():
            _refuse(self)

    def unregister(self) -> None:
        self._ledger().unregister(self.engine, self.host, self.epoch)

    def leave(self) -> None:
        """Leave the ledger now; stop the regions still running here after :attr:`grace` seconds."""
        try:
            self.unregister()
            logger.info("%s@%s left the fleet: no new regions; running ones get %g s", self.engine, self.host,
                        self.grace)
        except Exception as e:  # Redis gone: the heartbeat expiring says the same
            logger.warning("could not unregister %s@%s: %s", self.engine, self.host, e)
        self.stop_regions_later()

    def stop_regions_later(self) -> None:
        """After :attr:`grace` seconds, stop every region still running here (their processes
        fail with that cause), so the worker's warm shutdown ends within the soft timeout."""
        time.sleep(self.grace)
        r, keys = store.client(), Keys.current()
        mine = f"{self.host}|{self.epoch}"
        for pid in sorted(int(p) for p in r.smembers(keys.running)):
            lease = store.text_hash(r.hgetall(keys.lease(pid)))
            for region, holder in sorted(lease.items()):
                if holder == mine:
                    cause = (f"region {region} on {self.host}: its worker was stopped (SIGTERM) and the region "
                             f"did not end within {self.grace:g} s")
                    record_first(r, keys, pid, Cause.worker_lost(cause))
                    break


def _reaper(halt: threading.Event, node: str) -> None:
    """Every worker runs this; the one holding the fleet's reaper lock reaps (and tidies the
    process index now and then)."""
    next_trim = 0.0
    while not halt.wait(REAP_INTERVAL):
        try:
            r, keys = store.client(), Keys.current()
            if not _hold_lock(r, keys.reaper, node):
                continue
            for pid in reap_all():
                logger.warning("reaped process %s (its workers were lost)", pid)
            if time.monotonic() >= next_trim:
                next_trim = time.monotonic() + TRIM_INTERVAL
                trim_index(r, keys)
        except Exception as e:
            logger.warning("reaper: %s", e)


def _hold_lock(r: Any, key: str, node: str) -> bool:
    """Take (or keep) a lock that expires unless renewed: one reaper for the fleet at a time."""
    ttl = int(REAP_INTERVAL * 3000)
    if r.set(key, node, nx=True, px=ttl):
        return True
    if r.get(key) == node:
        r.pexpire(key, ttl)
        return True
    return False
