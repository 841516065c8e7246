"""Pausing every region of a running process at one consistent cut, reading it, and letting them go.

The request is one item, ``9 <token> <mode> <timeout>``, pushed to every region's queue in one
script (``fleet/lua/inject.lua``: counted into ``<pid>.active`` as a sending engine counts, so the
process cannot end under it).  Each engine pauses at its next safe point, writes its dump and
waits (engines/psim/runtime/pstack_snapshot.hpp says why the cut is consistent).  Once every dump
is there, one transaction reads them with what is still queued for each region (``LRANGE``) and
the OnHardwareIdle count, and lets every region carry on.  A region that has not paused within
the timeout fails the snapshot: the others are let go at once, and the late one carries on as
soon as it pauses (its word to resume is already waiting).
"""
from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from pstack_tasks.config import settings
from pstack_tasks.exceptions import ProcessError
from pstack_tasks.fleet import scripts, store
from pstack_tasks.fleet.keys import Keys
from pstack_tasks.fleet.persistence.binary import binary_client
from pstack_tasks.fleet.persistence.dumps import Dump, read_dump
from pstack_tasks.fleet.records import not_found
from pstack_tasks.protocol import ItemKind, QueueKeys

#: what the engines put in their JSON part: scalar states, every state member, or none (a checkpoint)
MODE_STATES, MODE_FULL_STATES, MODE_NO_STATES = 0, 1, 2
#: seconds between looks for the regions' dumps
_POLL = 0.01
#: the engine type whose one-region engines write dumps (their worker forwards them: worker/snapshot_port.py)
ONE_REGION_ENGINE = "psim"


@dataclass(frozen=True)
class Cut:
    """Every region of a process, paused at one consistent cut."""

    pid: int
    record: dict[str, str]
    dumps: dict[int, Dump]            #: by region
    queued: dict[int, list[bytes]]    #: each region's queue elements, head first
    idle_count: int                   #: ``<pid>.idle``: OnHardwareIdle rounds in a row that woke nothing
    pause_seconds: float              #: from the request until every region was let go
    taken: float                      #: wall-clock time of the cut


def running_record(r: redis.Redis, keys: Keys, pid: int) -> dict[str, str]:
    """The record of a process that can be paused: Running, every region an engine on the fleet
    (one region only on the engine whose worker forwards its dumps: worker/snapshot_port.py)."""
    rec = store.text_hash(r.hgetall(keys.proc(pid)))
    if not rec:
        raise not_found(pid)
    if rec.get("state") != "Running":
        raise ProcessError(f"process {pid} is {rec.get('state')}: only a running process can be snapshot")
    if json.loads(rec.get("client_regions") or "[]"):
        raise ProcessError(f"process {pid} has regions served by a client's Python engine: they cannot be snapshot")
    if len(json.loads(rec.get("regions") or "[]")) < 2 and rec.get("engine") != ONE_REGION_ENGINE:
        raise ProcessError(f"process {pid} runs in one region on engine {rec.get('engine')!r}, which takes no "
                           "snapshots")
    return rec


def pause_all(pid: int, mode: int = MODE_STATES, timeout: float | None = None) -> Cut:
    """Pause every region of running process ``pid``, read the cut, and let them carry on.

    Raises:
        ProcessNotFound: no such process.
        ProcessError: it is not running, cannot be snapshot, ended meanwhile, or a region did not
            pause within ``timeout`` seconds (PSTACK_SNAPSHOT_TIMEOUT); the regions carried on.
    """
    timeout = settings().snapshot_timeout if timeout is None else timeout
    with store.reporting():
        r, keys = store.client(), Keys.current()
        rec = running_record(r, keys, pid)
        regions = [int(x) for x in json.loads(rec["regions"])]
        q = keys.queues(pid)

        def push(item: str) -> None:
            call = scripts.Call().key(keys.proc(pid), q.active).key(*[q.queue(x) for x in regions]).arg(item)
            if not r.eval(scripts.source("inject"), len(call.keys), *call.keys, *call.args):
                raise ProcessError(f"process {pid} is ending: no snapshot was taken")

        def ended() -> str | None:
            state = store.text(r.hget(keys.proc(pid), "state"))
            if state == "Running":
                return None
            return f"process {pid} ended ({state}) before every region paused: no snapshot"

        paused = pause_regions(r, binary_client(), q, regions, mode, timeout, push, ended,
                               what=f"snapshot of process {pid}")
    return paused.cut(pid, rec)


@dataclass(frozen=True)
class Paused:
    """What was read while every region was paused: each region's dump (raw), queue and the idle count."""

    regions: list[int]
    raws: list[bytes]
    queued: list[list[bytes]]
    idle_count: int
    pause_seconds: float

    def cut(self, pid: int, record: dict[str, str]) -> Cut:
        dumps = {x: read_dump(raw, pid, x) for x, raw in zip(self.regions, self.raws)}
        return Cut(pid=pid, record=record, dumps=dumps, queued=dict(zip(self.regions, self.queued)),
                   idle_count=self.idle_count, pause_seconds=self.pause_seconds, taken=time.time())


def pause_regions(r: redis.Redis, binary: redis.Redis, q: QueueKeys, regions: list[int], mode: int, timeout: float,
                  push: Callable[[str], None], ended: Callable[[], str | None], what: str) -> Paused:
    """The barrier itself, for the fleet's processes and psim's local splits alike: ``push`` sends the
    request item to every region (raising ProcessError when the run is ending), then wait for every
    region's dump while ``ended`` says nothing (else its reason is the error), read the cut and let
    the regions go; on any failure they are let go at once.  ``binary`` answers bytes."""
    token = secrets.token_hex(8)
    t0 = time.monotonic()
    push(f"{ItemKind.SNAPSHOT} {token} {mode} {timeout:g}")
    names = [q.snapshot(token, x) for x in regions]
    try:
        while r.exists(*names) < len(names):
            why = ended()
            if why is not None:
                raise ProcessError(why)
            if time.monotonic() - t0 > timeout:
                late = [str(x) for x, name in zip(regions, names) if not r.exists(name)]
                raise ProcessError(f"{what}: region(s) {', '.join(late)} did not pause within {timeout:g} s; "
                                   "every region carried on")
            time.sleep(_POLL)
    except BaseException:
        let_go(r, q, token, regions, timeout)
        raise
    raws, queued, idle = read_and_let_go(binary, q, token, regions, timeout)
    return Paused(regions, raws, queued, idle, round(time.monotonic() - t0, 4))


def read_and_let_go(client: redis.Redis, q: QueueKeys, token: str, regions: list[int],
                    timeout: float) -> tuple[list[bytes], list[list[bytes]], int]:
    """The dumps, the queues and ``<pid>.idle``, read while every region is paused; then the
    regions' word to carry on, in the same transaction (``client`` answers bytes)."""
    pipe = client.pipeline(transaction=True)
    for x in regions:
        pipe.get(q.snapshot(token, x))
    for x in regions:
        pipe.lrange(q.queue(x), 0, -1)
    pipe.get(q.idle)
    _resume(pipe, q, token, regions, timeout)
    out = pipe.execute()
    n = len(regions)
    dumps = [_bytes(v) for v in out[:n]]
    queued = [[_bytes(e) for e in v] for v in out[n:2 * n]]
    idle = int(out[2 * n] or 0)
    return dumps, queued, idle


def _bytes(v: object) -> bytes:
    return v if isinstance(v, bytes) else b""


def _resume(pipe: redis.client.Pipeline, q: QueueKeys, token: str, regions: list[int], timeout: float) -> None:
    for x in regions:
        pipe.rpush(q.resume(token, x), "go")
        pipe.expire(q.resume(token, x), int(timeout) + 60)
        pipe.delete(q.snapshot(token, x))


def let_go(r: redis.Redis, q: QueueKeys, token: str, regions: list[int], timeout: float) -> None:
    pipe = r.pipeline(transaction=False)
    _resume(pipe, q, token, regions, timeout)
    pipe.execute()


__all__ = ["Cut", "Paused", "pause_all", "pause_regions", "running_record", "read_and_let_go", "let_go",
           "MODE_STATES", "MODE_FULL_STATES", "MODE_NO_STATES"]
