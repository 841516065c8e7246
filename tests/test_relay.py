"""socat relays kept for the next region (pstack_tasks/relay.py), against a real Redis and real socat.

A test plays the engine: it writes commands to the relay's command pipe and reads the replies,
as an engine does through ``--command-fd`` and its stdin.
"""
from __future__ import annotations

import os
import select
import time
from collections.abc import Iterator

import pytest

from pstack_tasks.native.relay import RedisTarget, Relay, RelayPool, resp


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _gone(pid: int, within: float = 3.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not _running(pid):
            return True
        time.sleep(0.02)
    return False


def _reply(relay: Relay, size: int, timeout: float = 5.0) -> bytes:
    """Read exactly ``size`` bytes of replies, as an engine would."""
    got = b""
    deadline = time.monotonic() + timeout
    while len(got) < size:
        assert select.select([relay.reply_fd], [], [], max(0.0, deadline - time.monotonic()))[0], got
        got += os.read(relay.reply_fd, size - len(got))
    return got


@pytest.fixture
def pool(monkeypatch: pytest.MonkeyPatch) -> Iterator[RelayPool]:
    monkeypatch.setenv("PSTACK_RELAY_IDLE", "30")
    p = RelayPool()
    yield p
    p.close_all()


@pytest.fixture
def target(redis_url: str) -> RedisTarget:
    return RedisTarget.parse(redis_url)


def test_a_relay_carries_commands_and_replies(no_leftovers: None, target: RedisTarget) -> None:
    relay = Relay(target)
    try:
        assert relay.take_skip() == len(target.preamble())
        _reply(relay, len(b"+OK\r\n") * len(target.preamble()))  # the preamble's replies
        os.write(relay.command_fd, resp(["PING"]))
        assert _reply(relay, 7) == b"+PONG\r\n"
        assert relay.in_step()
    finally:
        relay.close()
    assert _gone(relay.pid)


def test_a_clean_relay_is_kept_and_handed_out_again(no_leftovers: None, pool: RelayPool, target: RedisTarget) -> None:
    first = pool.acquire(target)
    _reply(first, 5 * first.take_skip())  # the preamble's replies, if the relay left them
    pool.release(first, clean=True)
    assert pool.idle_pids() == [first.pid]
    again = pool.acquire(target)
    assert again is first and again.uses == 1 and pool.idle_pids() == []
    os.write(again.command_fd, resp(["PING"]))
    assert _reply(again, 7) == b"+PONG\r\n"
    pool.release(again, clean=True)
    assert pool.idle_pids() == [first.pid]


def test_a_relay_with_a_reply_still_owed_is_closed(no_leftovers: None, pool: RelayPool, target: RedisTarget) -> None:
    relay = pool.acquire(target)
    _reply(relay, 5 * relay.take_skip())  # the preamble's replies, if the relay left them
    os.write(relay.command_fd, resp(["PING"]))  # an engine that left without reading its reply
    time.sleep(0.1)
    pool.release(relay, clean=True)
    assert pool.idle_pids() == []
    assert _gone(relay.pid)
    fresh = pool.acquire(target)
    assert fresh.pid != relay.pid
    fresh.close()


def test_a_relay_whose_engine_failed_is_closed_at_once(no_leftovers: None, pool: RelayPool,
                                                       target: RedisTarget) -> None:
    relay = pool.acquire(target)
    pool.release(relay, clean=False)
    assert pool.idle_pids() == [] and _gone(relay.pid, within=1.0)


def test_a_failed_engines_relay_is_gone_from_redis_when_released(no_leftovers: None, pool: RelayPool,
                                                                  target: RedisTarget, redis_client: object) -> None:
    # a region's end deletes its process's engine keys for good only if nothing its engine sent
    # can still run after it: the relay's connection is killed in Redis, not only socat
    import redis
    assert isinstance(redis_client, redis.Redis)
    relay = pool.acquire(target)
    assert relay.take_skip() == 0 and relay.client_id is not None  # the relay read its preamble's replies
    ids = {int(c["id"]) for c in redis_client.client_list()}
    assert relay.client_id in ids
    os.write(relay.command_fd, resp(["BLPOP", "pstack-test:never", "0"]))  # a command still pending
    pool.release(relay, clean=False)
    assert relay.client_id not in {int(c["id"]) for c in redis_client.client_list()}
    assert _gone(relay.pid, within=1.0)


def test_a_database_switched_by_a_handler_is_switched_back(no_leftovers: None, pool: RelayPool,
                                                           target: RedisTarget, redis_client: object) -> None:
    import redis

    from support.paths import KEY_PREFIX
    relay = pool.acquire(target)
    _reply(relay, 5 * relay.take_skip())  # the preamble's replies, if the relay left them
    other = 13 if target.db != 13 else 12
    os.write(relay.command_fd, resp(["SELECT", str(other)]))
    assert _reply(relay, 5) == b"+OK\r\n"
    pool.release(relay, clean=True)
    again = pool.acquire(target)
    assert again is relay
    key = f"{KEY_PREFIX}relay-db"
    os.write(again.command_fd, resp(["SET", key, "here"]))
    assert _reply(again, 5) == b"+OK\r\n"
    assert isinstance(redis_client, redis.Redis)
    assert redis_client.get(key) == b"here"  # in the target's database, not the handler's
    again.close()


def test_idle_relays_are_closed_after_the_idle_time(no_leftovers: None, monkeypatch: pytest.MonkeyPatch,
                                                    target: RedisTarget) -> None:
    monkeypatch.setenv("PSTACK_RELAY_IDLE", "0.2")
    pool = RelayPool()
    relay = pool.acquire(target)
    _reply(relay, 5 * relay.take_skip())  # the preamble's replies, if the relay left them
    pool.release(relay, clean=True)
    assert pool.idle_pids() == [relay.pid]
    assert _gone(relay.pid, within=2.0)
    assert pool.idle_pids() == []


def test_relay_idle_zero_means_a_relay_per_region(no_leftovers: None, monkeypatch: pytest.MonkeyPatch,
                                                  target: RedisTarget) -> None:
    monkeypatch.setenv("PSTACK_RELAY_IDLE", "0")
    pool = RelayPool()
    relay = pool.acquire(target)
    pool.release(relay, clean=True)
    assert pool.idle_pids() == [] and _gone(relay.pid, within=1.0)


def test_a_dead_idle_relay_is_not_handed_out(no_leftovers: None, pool: RelayPool, target: RedisTarget) -> None:
    relay = pool.acquire(target)
    _reply(relay, 5 * relay.take_skip())  # the preamble's replies, if the relay left them
    pool.release(relay, clean=True)
    os.kill(relay.pid, 9)
    assert _gone(relay.pid)
    fresh = pool.acquire(target)
    assert fresh is not relay and fresh.alive()
    fresh.close()
