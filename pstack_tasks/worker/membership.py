"""Worker-side membership of the fleet, connected to Celery's worker signals.

An engine worker is any ``celery -A pstack_tasks.celery_app worker`` consuming a queue
``engine.<type>``: when it is ready it registers ``<type>@<host>`` (host: the part of its
node name after ``@``) with as many slots as its concurrency, starts consuming its own
queue ``engine.<type>.<host>``, and keeps a heartbeat key alive while it lives.  A worker
consuming ``control`` runs the reaper, which ends processes whose workers vanished.
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

from pstack_tasks.config import settings
from pstack_tasks.fleet import store
from pstack_tasks.fleet.dispatch import pump
from pstack_tasks.fleet.keys import CONTROL_QUEUE, Keys, engine_types_of, host_queue
from pstack_tasks.fleet.ledger import Ledger
from pstack_tasks.fleet.lifecycle import reap_all
from pstack_tasks.native.procs import _libc

logger = logging.getLogger(__name__)
REAP_INTERVAL = 1.0
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
        engine = types[0]
        own = host_queue(engine, host)
        if own not in names:
            consumer.add_task_queue(own)
        slots = int(consumer.controller.concurrency)
        member = Member(engine, host, slots, consumer.hostname)
        member.register()
        _state["member"] = member
        threading.Thread(target=member.keep_alive, args=(halt,), daemon=True, name="pstack-heartbeat").start()
    if CONTROL_QUEUE in names:
        threading.Thread(target=_reaper, args=(halt,), daemon=True, name="pstack-reaper").start()


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
    if _libc is not None:
        _libc.prctl(1, signal.SIGKILL, 0, 0, 0)


class Member:
    """This worker's registration: slots in the ledger, and the heartbeat that keeps them."""

    def __init__(self, engine: str, host: str, slots: int, node: str) -> None:
        self.engine, self.host, self.slots, self.node = engine, host, slots, node
        self.epoch = uuid.uuid4().hex
        self.ttl = settings().heartbeat_ttl

    def _ledger(self) -> Ledger:
        return Ledger.of(store.client(), Keys.current())

    def register(self) -> None:
        info = {"node": self.node, "os_pid": os.getpid(), "since": round(time.time(), 3),
                "cxx": shutil.which(settings().cxx), "socat": shutil.which("socat")}  # for pstack doctor
        self._ledger().register(self.engine, self.host, self.slots, self.epoch, self.ttl, info)
        logger.info("registered %s@%s with %d slots", self.engine, self.host, self.slots)
        pump(self.engine)

    def keep_alive(self, halt: threading.Event) -> None:
        while not halt.wait(self.ttl / 4):
            try:
                if not self._ledger().beat(self.engine, self.host, self.epoch, self.ttl):
                    logger.warning("registration of %s@%s was lost (Redis restarted?): registering again",
                                   self.engine, self.host)
                    self.register()
            except Exception as e:
                logger.warning("heartbeat of %s@%s failed: %s", self.engine, self.host, e)

    def unregister(self) -> None:
        self._ledger().unregister(self.engine, self.host, self.epoch)


def _reaper(halt: threading.Event) -> None:
    while not halt.wait(REAP_INTERVAL):
        try:
            for pid in reap_all():
                logger.warning("reaped process %s (its workers were lost)", pid)
        except Exception as e:
            logger.warning("reaper: %s", e)
