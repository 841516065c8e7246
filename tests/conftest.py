"""Shared fixtures: a real Redis (the one scripts/test.sh starts, else a private one), and checks
that no engine, socat or redis-server started by a test outlives it."""
from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from pstack_tasks.redis_server import EmbeddedRedis

DATA = Path(__file__).parent / "data"
PSTACK = DATA / "pstack"
TEST_DB = 14          # our own database on a shared server
KEY_PREFIX = "pstest:"


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.3):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis: $PSTACK_TEST_REDIS_URL, the local server on 6379 (db 14), or a private one."""
    url = os.environ.get("PSTACK_TEST_REDIS_URL")
    if url:
        yield url
    elif _port_open("127.0.0.1", 6379):
        yield f"redis://127.0.0.1:6379/{TEST_DB}"
    else:
        with EmbeddedRedis() as server:
            yield server.url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[object]:
    import redis
    client = redis.Redis.from_url(redis_url)
    yield client
    for key in client.scan_iter(f"{KEY_PREFIX}*"):
        client.delete(key)
    client.close()


def our_processes() -> list[str]:
    """Engines, socat relays and private redis-servers that are children of this test run, or
    orphans (re-parented to init) that a run of ours may have leaked."""
    out = subprocess.run(["ps", "-eo", "pid,ppid,args"], capture_output=True, text=True).stdout
    found = []
    for line in out.splitlines()[1:]:
        parts = line.split(None, 2)
        if len(parts) < 3:
            continue
        ppid, args = int(parts[1]), parts[2]
        ours = "pstack-celery/engines/" in args or args.startswith("socat ") or "/socat " in args or \
            ("redis-server" in args and ":6379" not in args)
        if ours and ppid in (os.getpid(), 1):
            found.append(line.strip())
    return found


@pytest.fixture
def no_leftovers() -> Iterator[None]:
    """Fail the test if it leaves an engine, socat or private redis-server running."""
    before = set(our_processes())
    yield
    after = [p for p in our_processes() if p not in before]
    assert not after, f"processes left running: {after}"
