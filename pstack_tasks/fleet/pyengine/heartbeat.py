"""A client-served region's heartbeat: the fleet's way to notice that the client serving a region
is gone (killed, its host lost) and fail the process instead of waiting for it forever.

A daemon thread, started when an ``Engine`` attaches to a process and stopped when the engine
ends, refreshes ``Keys.client_beat(pid, region)`` every quarter of ``PSTACK_HEARTBEAT_TTL``, so
the region stays alive between the client's calls too (a client may serve it step by step, or
not yet).  Each beat also names the client in the process record (``client_host:<region>``),
where the reaper and the fleet regions' guards find it after the beat has expired
(:func:`pstack_tasks.fleet.lifecycle.lost_regions`).  The thread stops by itself once the
process has ended.
"""
from __future__ import annotations

import logging
import os
import socket
import threading

from pstack_tasks.config import settings
from pstack_tasks.fleet import store
from pstack_tasks.fleet.keys import Keys
from pstack_tasks.fleet.records import ENDED

logger = logging.getLogger(__name__)

#: refresh the beat; name the client in the record once it exists; the process's state
BEAT_SCRIPT = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[2], ARGV[3], ARGV[1])
  return redis.call('HGET', KEYS[2], 'state')
end
return false
"""


def client_field(region: int | str) -> str:
    """The record's field naming the client that serves ``region``."""
    return f"client_host:{region}"


def client_identity() -> str:
    """How a lost client is named: its host and process id."""
    return f"{socket.gethostname()} pid {os.getpid()}"


class ClientHeartbeat:
    """Beats for region ``region`` of process ``pid`` from a daemon thread until stopped."""

    def __init__(self, pid: int, region: int) -> None:
        self.pid, self.region = pid, region
        self.keys, self.r = Keys.current(), store.client()
        self.ttl = settings().heartbeat_ttl
        self.key = self.keys.client_beat(pid, region)
        self.identity = client_identity()
        self.script = self.r.register_script(BEAT_SCRIPT)
        self.halt = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"pstack-client-beat-{pid}.{region}")
        self.seen = False  # the record has existed (a record gone afterwards: the process was flushed)

    def start(self) -> None:
        """Beat once now (before the process can be admitted), then on in the background."""
        self.beat()
        self.thread.start()

    def beat(self) -> bool:
        """Refresh the beat; False once the process has ended (nothing left to beat for)."""
        state = self.script(keys=[self.key, self.keys.proc(self.pid)],
                            args=[self.identity, int(self.ttl * 1000), client_field(self.region)])
        if state is not None:
            self.seen = True
        return not ((state is None and self.seen) or state in ENDED)

    def stop(self) -> None:
        """Stop beating and drop the beat (the region ended: it is not lost)."""
        self.halt.set()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(timeout=5)
        try:
            self.r.delete(self.key)
        except Exception as e:  # Redis gone: the beat expires by itself
            logger.warning("client heartbeat of process %s region %s: %s", self.pid, self.region, e)

    def _run(self) -> None:
        while not self.halt.wait(self.ttl / 4):
            try:
                if not self.beat():
                    break
            except Exception as e:  # Redis trouble: try again; the fleet judges by the beat's age
                logger.warning("client heartbeat of process %s region %s: %s", self.pid, self.region, e)
        self.stop()


__all__ = ["ClientHeartbeat", "client_field", "client_identity"]
