"""``pstack doctor``: the checks an operator makes before trusting a fleet, one :class:`Check` each.

Each check looks at one thing the stack relies on (docs/doctor.md lists them with their fixes):
Redis reachable with the configured credentials, persistence and ``noeviction`` set, this
client's clock against Redis's, live engine workers with slots, a control path for merges, the
compiler and socat on every engine host (as each worker saw them on its own PATH when it
registered), and finally a real 2-region process end to end.  A check never raises: whatever
goes wrong becomes a FAIL row with the fix.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlparse

import redis

from pstack_tasks.config import mask_url, settings
from pstack_tasks.exceptions import ProcessFailed, PstackError
from pstack_tasks.fleet import client, store
from pstack_tasks.fleet.keys import CONTROL_QUEUE
from pstack_tasks.fleet.sample import RING_DELIVERED, RING_RMAP, delivered, ring_oscillator

OK, WARN, FAIL = "OK", "WARN", "FAIL"
#: clock skew (s) between this client and Redis worth a warning, and one that breaks timeouts
SKEW_WARN, SKEW_FAIL = 0.5, 5.0
#: engine types whose engines are compiled (a missing compiler fails their hosts' row)
COMPILED_ENGINES = ("psim",)


@dataclass(frozen=True)
class Check:
    """One row of the doctor's table: what was checked, how it went, what was seen, the fix."""

    name: str
    status: str
    detail: str
    fix: str = ""

    @property
    def passed(self) -> bool:
        return self.status != FAIL

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def check_redis(url: str) -> Check:
    """Redis answers PING with the credentials of PSTACK_REDIS_URL (and requires some)."""
    where = mask_url(url)
    try:
        with store.reporting(url):
            r = store.client(url)
            r.ping()
            version = _server_version(r)
    except (PstackError, redis.RedisError) as e:
        fix = ("put the password (and ACL user) in PSTACK_REDIS_URL: redis://[user]:password@host:port/db"
               if "credential" in str(e) or "authentication" in str(e)
               else "start redis-server there, or correct host:port in PSTACK_REDIS_URL")
        return Check("redis", FAIL, str(e), fix)
    user = urlparse(url).username or "default"
    if urlparse(url).password is None:
        return Check("redis", WARN, f"Redis {version} at {where} answers without a password",
                     "set requirepass (or ACL users) and put the password in PSTACK_REDIS_URL (docs/security.md)")
    return Check("redis", OK, f"Redis {version} at {where}, authenticated as {user}")


def _server_version(r: redis.Redis) -> str:
    try:
        return str(r.info("server").get("redis_version", "?"))
    except redis.exceptions.ResponseError:  # INFO refused to this ACL user
        return "?"


def _config(r: redis.Redis, name: str) -> str | Check:
    """A CONFIG GET value, or the WARN row saying CONFIG is refused (ACL, renamed command)."""
    try:
        return str(r.config_get(name).get(name, ""))
    except redis.exceptions.ResponseError as e:  # NoPermissionError is one
        return Check(_CONFIG_ROWS[name], WARN, f"CONFIG GET {name} refused ({e}): not checked",
                     f"check as a Redis admin: redis-cli CONFIG GET {name}")


_CONFIG_ROWS = {"appendonly": "persistence", "save": "persistence", "maxmemory-policy": "eviction"}


def check_persistence(r: redis.Redis) -> Check:
    """AOF or RDB snapshots configured: without either a Redis restart loses every record and
    restarts the pid counter."""
    aof = _config(r, "appendonly")
    if isinstance(aof, Check):
        return aof
    if aof == "yes":
        return Check("persistence", OK, "AOF (appendonly yes)")
    save = _config(r, "save")
    if isinstance(save, Check):
        return save
    if save.strip():
        return Check("persistence", OK, f"RDB snapshots (save {save}); AOF loses less on a crash")
    return Check("persistence", FAIL, "neither AOF nor RDB: a Redis restart loses every process record and pid",
                 "appendonly yes in redis.conf (or CONFIG SET appendonly yes; CONFIG REWRITE)")


def check_eviction(r: redis.Redis) -> Check:
    """``maxmemory-policy noeviction``: an evicted lease or record would be lost silently."""
    policy = _config(r, "maxmemory-policy")
    if isinstance(policy, Check):
        return policy
    if policy == "noeviction":
        return Check("eviction", OK, "maxmemory-policy noeviction")
    return Check("eviction", FAIL, f"maxmemory-policy {policy}: Redis may evict leases and records when full",
                 "maxmemory-policy noeviction in redis.conf (or CONFIG SET maxmemory-policy noeviction)")


def clock_skew(r: redis.Redis) -> float:
    """Seconds this client's clock is ahead of Redis's (TIME), the round trip halved out."""
    before = time.time()
    seconds, micros = r.time()
    after = time.time()
    return (before + after) / 2 - (seconds + micros / 1e6)


def check_clock(r: redis.Redis) -> Check:
    """Records carry the clients' and workers' clocks (submitted, started, the start timeout);
    a clock far from Redis's makes elapsed times wrong and can fail a process that never started
    too early.  Workers' heartbeats carry no time: run this on each host to check its clock."""
    skew = clock_skew(r)
    detail = f"this host's clock is {abs(skew):.3f} s {'ahead of' if skew >= 0 else 'behind'} Redis's"
    fix = "synchronise the clocks of every host with NTP (chrony or systemd-timesyncd)"
    if abs(skew) >= SKEW_FAIL:
        return Check("clock", FAIL, detail, fix)
    if abs(skew) >= SKEW_WARN:
        return Check("clock", WARN, detail, fix)
    return Check("clock", OK, detail)


def check_engines(workers: list[dict[str, Any]], engine: str) -> list[Check]:
    """One row per engine type: its online workers, their slots and fresh heartbeats."""
    types = sorted({str(w["engine"]) for w in workers} | {engine})
    return [_engine_row(t, [w for w in workers if w["engine"] == t]) for t in types]


def _engine_row(engine: str, workers: list[dict[str, Any]]) -> Check:
    name = f"engines {engine}"
    start = f"pstack worker --engine {engine} --slots N (on each engine host)"
    online = [w for w in workers if w["alive"]]
    lost = [str(w["host"]) for w in workers if not w["alive"]]
    if not online:
        seen = f" ({', '.join(lost)} registered, heartbeat expired)" if lost else ""
        return Check(name, FAIL, f"no {engine} worker online{seen}", f"start one: {start}")
    slots = sum(int(w["slots"]) for w in online)
    detail = (f"{len(online)} online, {slots} slots, fresh heartbeats: "
              + ", ".join(f"{w['host']} {w['slots']}" for w in online))
    if lost:
        return Check(name, WARN, f"{detail}; offline: {', '.join(lost)}",
                     f"restart the offline workers ({start}); their registrations age out otherwise")
    return Check(name, OK, detail)


def control_consumers(timeout: float = 2.0) -> list[str]:
    """The Celery workers consuming the ``control`` queue (the API tasks of Flower), asked over
    Celery's remote control: whichever workers the fleet uses for it answer."""
    from pstack_tasks.celery_app import app
    replies = app.control.inspect(timeout=timeout).active_queues() or {}
    return sorted(node for node, queues in replies.items()
                  if any(q.get("name") == CONTROL_QUEUE for q in queues or []))


def check_control() -> Check:
    """A worker consumes ``control``: without one the tasks of Flower's API (``pstack.submit``,
    ``pstack.result``, ``pstack.batch``) are never run."""
    try:
        nodes = control_consumers()
    except Exception as e:  # the broker refused the remote-control call: say so, do not guess
        return Check("control", FAIL, f"could not ask the workers which queues they consume: {e}",
                     "check that the workers run with remote control enabled (the default)")
    if not nodes:
        return Check("control", FAIL, "no worker consumes the control queue: Flower's API tasks would never run",
                     "start a control worker: pstack worker --control")
    return Check("control", OK, f"control queue consumed by {', '.join(nodes)}")


def check_tools(workers: list[dict[str, Any]]) -> list[Check]:
    """The compiler and socat on each engine host, as its worker found them on its own PATH."""
    return [_tools_row(w) for w in workers if w["alive"]]


def _tools_row(worker: dict[str, Any]) -> Check:
    engine, host = str(worker["engine"]), str(worker["host"])
    name = f"tools {engine}@{host}"
    if "cxx" not in worker or "socat" not in worker:
        return Check(name, WARN, "the worker does not report its tools (an older version)",
                     "upgrade pstack-celery on that host and restart the worker")
    missing = [tool for tool, key in (("a C++ compiler", "cxx"), ("socat", "socat")) if not worker[key]]
    if not missing:
        return Check(name, OK, f"compiler {worker['cxx']}, socat {worker['socat']}")
    detail = f"{' and '.join(missing)} not found on the worker's PATH"
    fix = (f"on {host}: apt-get install g++ socat (or set PSTACK_CXX for the worker), then restart the worker")
    compiler_only = missing == ["a C++ compiler"]
    return Check(name, WARN if compiler_only and engine not in COMPILED_ENGINES else FAIL, detail, fix)


def check_process(engine: str, timeout: float) -> Check:
    """pstack's ring oscillator as a 2-region process: Done with 40 messages delivered in time."""
    name = "test process"
    try:
        future = client.run(ring_oscillator(), rmap=RING_RMAP, engine=engine, async_=True)
    except PstackError as e:
        return Check(name, FAIL, f"could not submit: {e}", "see the engine and control rows above")
    try:
        result = client.block_one(future.pid, timeout)
    except TimeoutError:
        _safely("test process", lambda: Check("test process", OK, client.kill(future.pid)))
        return Check(name, FAIL, f"process {future.pid} did not end within {timeout:g} s (killed)",
                     "check the control row and the workers' logs (a busy fleet: --timeout S)")
    except ProcessFailed as e:
        return Check(name, FAIL, str(e), "fix what the reason names, then run pstack doctor again")
    except PstackError as e:
        return Check(name, FAIL, f"process {future.pid}: {e}", "see the rows above")
    got = delivered(result)
    if got != RING_DELIVERED:
        return Check(name, FAIL, f"process {future.pid} delivered {got} messages, not {RING_DELIVERED}",
                     "the engines or their relays lose messages: report it with the workers' logs")
    hosts = ", ".join(sorted(set(result.get("hosts", {}).values())))
    return Check(name, OK, f"process {future.pid}: 2 regions on {hosts}, {got} delivered")


def run_checks(url: str, engine: str | None = None, timeout: float = 60.0,
               on_check: Callable[[Check], None] | None = None) -> list[Check]:
    """Every check in order; when Redis cannot be used the others are not attempted."""
    engine = engine or settings().engine
    first = check_redis(url)
    out = [first]
    if on_check:
        on_check(first)
    if first.passed:
        for check in _fleet_checks(store.client(url), engine, timeout):
            out.append(check)
            if on_check:
                on_check(check)
    return out


def _safely(name: str, check: Callable[[], Check | list[Check]]) -> list[Check]:
    """Run a check; an error it did not expect (Redis gone meanwhile, an ACL refusal) is its FAIL row."""
    try:
        out = check()
    except (PstackError, redis.RedisError) as e:
        return [Check(name, FAIL, f"could not check: {e}", "fix the error, then run pstack doctor again")]
    return out if isinstance(out, list) else [out]


def _fleet_checks(r: redis.Redis, engine: str, timeout: float) -> Iterable[Check]:
    yield from _safely("persistence", lambda: check_persistence(r))
    yield from _safely("eviction", lambda: check_eviction(r))
    yield from _safely("clock", lambda: check_clock(r))
    workers: list[dict[str, Any]] = []
    try:
        workers = client.engines()
    except PstackError as e:
        yield Check("engines", FAIL, f"could not read the ledger: {e}", "fix the error, then run pstack doctor again")
    else:
        yield from check_engines(workers, engine)
    (control,) = _safely("control", check_control)
    yield control
    yield from _safely("tools", lambda: check_tools(workers))
    if any(w["alive"] and w["engine"] == engine for w in workers) and control.passed:
        yield check_process(engine, timeout)
    else:
        yield Check("test process", FAIL, "not run: needs an online engine worker and a control path",
                    "fix the engine and control rows above")


__all__ = ["Check", "OK", "WARN", "FAIL", "run_checks", "check_redis", "check_persistence", "check_eviction",
           "check_clock", "check_engines", "check_control", "check_tools", "check_process", "clock_skew",
           "control_consumers"]
