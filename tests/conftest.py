"""Shared fixtures: a real Redis (a private redis-server on a free port, started and stopped by
this run; or $PSTACK_TEST_REDIS_URL), a session
fleet of real Celery workers, and checks that no engine, socat or redis-server started by a test
outlives it.  Helpers live in ``tests/support/``."""
from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from pstack_tasks.native.redis_server import EmbeddedRedis
from support.fleet import SESSION_PIDS, WorkerFleet, our_processes, started_fleet
from support.ledger import ledger  # noqa: F401 (a fixture for the ledger tests)
from support.paths import KEY_PREFIX, TEST_DB

# Fixtures that mean "this test needs a real Redis (and maybe workers)": such tests are marked
# ``fleet`` so that ``pytest -m "not fleet"`` runs the rest on a machine with no Redis at all.
FLEET_FIXTURES = {"redis_url", "redis_client", "fleet", "on_fleet"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if FLEET_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.fleet)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis: $PSTACK_TEST_REDIS_URL if set, else a private redis-server on a free port
    that this run starts and stops (so two checkouts can test at once on one machine, and no
    server is left behind)."""
    url = os.environ.get("PSTACK_TEST_REDIS_URL")
    if url:
        yield url
        return
    with EmbeddedRedis() as server:
        assert server.proc is not None
        SESSION_PIDS.add(server.proc.pid)
        yield server.url.rsplit("/", 1)[0] + f"/{TEST_DB}"


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[object]:
    import redis
    client = redis.Redis.from_url(redis_url)
    yield client
    for key in client.scan_iter(f"{KEY_PREFIX}*"):
        client.delete(key)
    client.close()


@pytest.fixture
def no_leftovers() -> Iterator[None]:
    """Fail the test if it leaves an engine, socat or private redis-server running."""
    before = set(our_processes())
    yield
    after = [p for p in our_processes() if p not in before]
    assert not after, f"processes left running: {after}"


@pytest.fixture(scope="session")
def fleet(redis_url: str) -> Iterator[WorkerFleet]:
    """Two psim workers of 2 slots (4 slots), one dummy worker of 4, a control worker."""
    with started_fleet(redis_url, [("psim", "alpha", 2), ("psim", "beta", 2), ("dummy", "delta", 4)]) as f:
        yield f


@pytest.fixture
def on_fleet(fleet: WorkerFleet) -> Iterator[WorkerFleet]:
    """The session fleet, checked after the test: no engine or relay left, every slot free again."""
    yield fleet
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and fleet.leftovers():
        time.sleep(0.1)
    assert not fleet.leftovers(), f"left running: {fleet.leftovers()}"
    while time.monotonic() < deadline and any(w["busy"] for w in fleet.fleet.ledger().fleet()):
        time.sleep(0.05)
    assert [w for w in fleet.fleet.ledger().fleet() if w["busy"]] == []


def _one_slot_workers(redis_url: str, monkeypatch: pytest.MonkeyPatch, hosts: int) -> Iterator[WorkerFleet]:
    """``hosts`` psim workers of one slot each (w1, w2, ...) and a control worker, for tests that
    kill a worker: a heartbeat TTL of 3 s, so that the loss is noticed within seconds."""
    monkeypatch.setenv("PSTACK_HEARTBEAT_TTL", "3")
    with started_fleet(redis_url, [("psim", f"w{i + 1}", 1) for i in range(hosts)]) as f:
        yield f


@pytest.fixture
def one_worker(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[WorkerFleet]:
    """One psim worker of one slot and a control worker (a one-region process fills it)."""
    yield from _one_slot_workers(redis_url, monkeypatch, 1)


@pytest.fixture
def two_workers(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[WorkerFleet]:
    """Two psim workers of one slot each (a 2-region process needs both) and a control worker."""
    yield from _one_slot_workers(redis_url, monkeypatch, 2)
