"""A fleet on a Redis that requires authentication: a password, and ACL users.

The server (our own, on a free port) requires a password for its default user and has
two ACL users: ``fleet`` (everything: the workers log in as it) and ``monitor`` (read
only). A client with the default user's password runs a two-region psim process, whose
messages go through socat relays that log in first, and a dummy process; a monitor can
list them but not kill them; wrong or missing credentials are named in one line; and the
password shows up nowhere: not in records, Redis values, ``ps``, the process table or errors.
"""
from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import redis

from pstack_tasks.exceptions import PermissionDenied, RedisUnavailable
from pstack_tasks.fleet.client import kill, ps, run, status
from pstack_tasks.native.redis_server import EmbeddedRedis
from pstack_tasks.worker.local import use_stack
from support.commands import pstack
from support.expected import check
from support.fleet import WorkerFleet, processes_table
from support.paths import PSTACK

RING = "ring-oscillator-01.xml"
PASSWORD = "s3cret-Pw-4711"
FLEET_PASSWORD = "fleet-Pw-0815"
MONITOR_PASSWORD = "monitor-Pw-2342"
SECRETS = (PASSWORD, FLEET_PASSWORD, MONITOR_PASSWORD)

pytestmark = pytest.mark.fleet  # every test here starts its own password-protected redis-server


class Secured:
    """The server, its URLs per user, and a fleet whose workers log in as the ACL user ``fleet``."""

    def __init__(self, server: EmbeddedRedis, fleet: WorkerFleet) -> None:
        self.server, self.fleet = server, fleet
        where = f"127.0.0.1:{server.port}/0"
        self.default = f"redis://:{PASSWORD}@{where}"
        self.monitor = f"redis://monitor:{MONITOR_PASSWORD}@{where}"
        self.wrong = f"redis://:not-the-{PASSWORD}@{where}"
        self.anonymous = f"redis://{where}"

    def client_env(self, url: str) -> dict[str, str]:
        return dict(os.environ, PSTACK_REDIS_URL=url, PSTACK_KEY_PREFIX=self.fleet.prefix)


@pytest.fixture(scope="module")
def secured() -> Iterator[Secured]:
    with EmbeddedRedis(password=PASSWORD) as server:
        admin = redis.Redis.from_url(server.url)
        admin.acl_setuser("fleet", enabled=True, passwords=[f"+{FLEET_PASSWORD}"], keys=["~*"], channels=["*"],
                          commands=["+@all"])
        admin.acl_setuser("monitor", enabled=True, passwords=[f"+{MONITOR_PASSWORD}"], keys=["~*"], channels=["*"],
                          commands=["-@all", "+@read", "+@connection"])
        admin.close()
        fleet = WorkerFleet(f"redis://fleet:{FLEET_PASSWORD}@127.0.0.1:{server.port}/0",
                            [("psim", "s1", 2), ("dummy", "s2", 2)])
        try:
            yield Secured(server, fleet)
        finally:
            fleet.close()


def test_processes_run_end_to_end_with_a_password(secured: Secured, no_leftovers: None) -> None:
    from support.faults import wait_for
    with use_stack(secured.default, secured.fleet.prefix):
        result = run(PSTACK / RING, rmap={"n1": 1, "n2": 1}, timeout=60)  # 2 regions, socat logs in
        check(result, RING)
        assert len(result["regions"]) == 2
        dummy = run(PSTACK / RING, rmap={"n1": 1}, engine="dummy", options={"seconds": 0.2}, timeout=30)
        assert dummy["metrics"]["Exit code"] == 0 and len(dummy["regions"]) == 2
        assert status(result["pid"])["state"] == status(dummy["pid"])["state"] == "Done"
    wait_for(lambda: not secured.fleet.leftovers(), 5, "no engine or relay left")


def test_a_read_only_monitor_lists_processes_but_cannot_kill(secured: Secured) -> None:
    with use_stack(secured.default, secured.fleet.prefix):
        f = run(PSTACK / RING, engine="dummy", options={"seconds": 30}, async_=True)
    try:
        with use_stack(secured.monitor, secured.fleet.prefix):
            assert f.pid in {p["pid"] for p in ps()}
            with pytest.raises(PermissionDenied) as e:
                kill(f.pid)
            assert "the Redis user 'monitor' of PSTACK_REDIS_URL may not do this" in str(e.value)
            assert status(f.pid)["state"] in ("Waiting", "Running")
    finally:
        with use_stack(secured.default, secured.fleet.prefix):
            assert kill(f.pid) == "Killed"


@pytest.mark.parametrize("who", ["wrong", "anonymous"])
def test_bad_credentials_are_named_in_one_line_without_the_password(secured: Secured, who: str) -> None:
    url = getattr(secured, who)
    expected = "refused the credentials in PSTACK_REDIS_URL" if who == "wrong" else "requires authentication"
    with use_stack(url, secured.fleet.prefix):
        for call in (ps, lambda: run(PSTACK / RING, engine="dummy"), lambda: kill(1)):
            with pytest.raises(RedisUnavailable, match=expected) as e:
                call()
            shown = "redis://:***@" if who == "wrong" else "redis://"
            assert f"{shown}127.0.0.1:{secured.server.port}/0" in str(e.value)
            assert not any(s in str(e.value) for s in SECRETS), str(e.value)
    p = pstack("ps", env=secured.client_env(url))
    assert p.returncode == 5
    assert p.stderr.startswith("pstack: error: Redis at ") and expected in p.stderr
    assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert not any(s in p.stderr for s in SECRETS)


def test_the_password_appears_nowhere(secured: Secured) -> None:
    env = secured.client_env(secured.default)
    p = pstack("run", "--async", "-e", "dummy", "--option", "seconds=30", "--rmap", '{"n1": 1}',
               str(PSTACK / RING), env=env)
    assert p.returncode == 0, p.stderr
    pid = p.stdout.strip()
    try:
        listing = pstack("ps", "-r", env=env).stdout + pstack("ps", env=env).stdout
        listing += pstack("status", pid, env=env).stdout + pstack("engines", "-r", env=env).stdout
        assert pid in listing
        assert not any(s in listing for s in SECRETS)
        table = "\n".join(args for _, _, args in processes_table())
        assert not any(s in table for s in SECRETS), "a password is visible in the process table"
        everything = _every_value(redis.Redis.from_url(secured.default))
        assert len(everything) > 10
        leaked = [v[:200] for v in everything if any(s.encode() in v for s in SECRETS)]
        assert not leaked, leaked
    finally:
        assert pstack("kill", pid, env=env).stdout.strip() == f"{pid} Killed"


def test_a_malformed_url_is_reported_without_its_password() -> None:
    env = dict(os.environ, PSTACK_REDIS_URL=f"http://:{PASSWORD}@127.0.0.1:1/0")
    p = pstack("ps", env=env)
    assert p.returncode == 5 and "PSTACK_REDIS_URL='http://:***@127.0.0.1:1/0'" in p.stderr
    assert PASSWORD not in p.stderr


def _every_value(r: redis.Redis) -> list[bytes]:
    """Every key and value in the server, of every type, as bytes (to look for secrets in)."""
    out: list[bytes] = []
    for key in r.scan_iter(count=1000):
        out.append(key)
        kind = r.type(key).decode()
        if kind == "string":
            out.append(r.get(key) or b"")
        elif kind == "hash":
            out.extend(b"%s=%s" % kv for kv in r.hgetall(key).items())
        elif kind == "list":
            out.extend(r.lrange(key, 0, -1))
        elif kind == "set":
            out.extend(r.smembers(key))
        elif kind == "zset":
            out.extend(m for m, _ in r.zrange(key, 0, -1, withscores=True))
        elif kind == "stream":
            out.extend(repr(e).encode() for e in r.xrange(key))
    r.close()
    return out

