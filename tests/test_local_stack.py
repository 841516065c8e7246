"""The embedded stack (worker/local.py LocalStack): one lean worker process, and nothing left after it."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from pstack_tasks.worker.local import LocalStack
from support.commands import RING
from support.fleet import processes_table


@pytest.mark.fleet
def test_embedded_stack_runs_a_process_on_one_threads_worker_that_also_ends_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PSTACK_REDIS_URL", raising=False)
    with LocalStack("psim", 2) as stack:
        assert stack._fleet is not None
        assert list(stack._fleet) == ["psim@local"]  # no control worker: the engine worker merges
        worker = stack._fleet.workers["psim@local"]
        args = Path(f"/proc/{worker.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        assert "-m pstack_tasks.worker.launch" in args and "-P threads" in args, args
        from pstack_tasks.fleet.client import run
        result = run(RING, rmap={"n1": 1})
        assert result["metrics"]["Delivered messages"] == 40
        assert set(result["regions"]) == {"0", "1"}
    assert worker.poll() is not None
    assert [a for p, pp, a in processes_table() if pp == worker.pid or p == worker.pid] == []
    assert "PSTACK_REDIS_URL" not in os.environ


@pytest.mark.fleet
def test_embedded_redis_runs_a_command_without_redis_py_and_names_a_refusal() -> None:
    from pstack_tasks.exceptions import RedisUnavailable
    from pstack_tasks.native.redis_server import EmbeddedRedis
    with EmbeddedRedis(password="a secret") as server:
        assert server.command("SET", "k", "1", "NX") == b"+OK"
        assert server.command("SET", "k", "2", "NX") == b"$-1"  # nil: the first write stands
        with pytest.raises(RedisUnavailable, match="^the embedded redis-server refused NOSUCH: -ERR unknown"):
            server.command("NOSUCH")


@pytest.mark.fleet
def test_embedded_stack_hands_out_pids_from_1() -> None:
    with LocalStack("psim", 2):
        from pstack_tasks.fleet.client import run
        assert run(RING, rmap={"n1": 1})["pid"] == 1
