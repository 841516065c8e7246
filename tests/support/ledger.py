"""The slot ledger on a real Redis without workers, for the tests of admission, fair sharing and
matching: a ``ledger`` fixture and ``join`` (a worker of engine type :data:`ENGINE` registers)."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from pstack_tasks.fleet.keys import Keys
from pstack_tasks.fleet.ledger import Ledger
from pstack_tasks.fleet.matching import EVERYONE, Serving
from support.paths import KEY_PREFIX

ENGINE = "t"


@pytest.fixture
def ledger(redis_url: str, redis_client: Any) -> Iterator[Ledger]:
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    yield Ledger(r, Keys(KEY_PREFIX))
    r.close()


def join(ledger: Ledger, host: str, slots: int, serving: Serving = EVERYONE) -> None:
    """Worker ``host`` of engine type :data:`ENGINE` registers ``slots`` slots, serving ``serving``."""
    ledger.register(ENGINE, host, slots, f"epoch-{host}", 30.0, {"node": f"{ENGINE}@{host}"}, serving)
