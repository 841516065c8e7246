"""The slot ledger's scripts on a real Redis, without workers: gang admission in order, and every
key a script touches declared in its KEYS (what Redis requires of scripts, Redis Cluster routes
by and ACL key patterns are checked against)."""
from __future__ import annotations

import json
import re
import shlex
import threading
import time

import redis

from pstack_tasks.fleet.ledger import Ledger, RegionEnded, WorkerEnd
from pstack_tasks.fleet.scripts import CANDIDATES
from pstack_tasks.native.results import merge_results
from support.ledger import ENGINE, join
from support.paths import KEY_PREFIX


def _submit(ledger: Ledger, pid: int, regions: list[int],
            rcon: dict[str, str] | None = None) -> tuple[str | None, list[int]]:
    keys = ledger.keys
    record = {"pid": pid, "engine": ENGINE, "regions": json.dumps(regions), "nregions": len(regions),
              "rcon": json.dumps(rcon or {}), "graph_type": "g", "state": "Submitted"}
    refusal, admitted = ledger.submit(ENGINE, pid, lambda pipe: pipe.hset(keys.proc(pid), mapping=record))
    return refusal, [a.pid for a in admitted]


def test_a_gang_waits_for_all_its_slots_and_starts_when_a_region_gives_one_back(ledger: Ledger) -> None:
    join(ledger, "a", 2)
    join(ledger, "b", 1)
    assert _submit(ledger, 1, [0, 1]) == (None, [1])
    assert _submit(ledger, 2, [0, 1]) == (None, [])  # one slot free, two needed
    assert ledger.r.hget(ledger.keys.proc(2), "state") == "Waiting"
    view = ledger.view(ENGINE)
    reply = RegionEnded.of(ledger.transaction(lambda pipe: ledger.region_end(pipe, view, 1, 0, [0, 1], None))[0])
    assert [a.pid for a in ledger.admitted(ENGINE, reply.admission)] == [2]
    hosts = json.loads(ledger.r.hget(ledger.keys.proc(2), "hosts") or "{}")
    assert sorted(hosts) == ["0", "1"] and ledger.r.get(ledger.keys.queues(2).active) == "2"


def test_a_region_ending_after_its_process_stores_no_part_and_deletes_its_engine_keys(ledger: Ledger) -> None:
    # the leak pstack loadtest found: a killed process's region ended after the process, wrote its
    # part and left its engine's recreated keys without an expiry
    join(ledger, "a", 2)
    assert _submit(ledger, 1, [0, 1]) == (None, [1])
    keys, q = ledger.keys, ledger.keys.queues(1)
    view = ledger.view(ENGINE)
    ledger.transaction(lambda pipe: ledger.region_end(pipe, view, 1, 0, [0, 1], '{"states": {}}'))
    assert ledger.r.hkeys(keys.result(1)) == ["0"]  # Running: the part is kept, the keys too
    assert ledger.r.exists(q.active)
    ending = ledger.end(1, "Killed", "killed by test")
    assert ending is not None and ending.ended and not ledger.r.exists(keys.result(1))
    ledger.r.rpush(q.queue(0), "0 1 0 0")  # what region 1's engine still wrote, after the end
    ledger.r.incrby(q.active, 1)
    ledger.r.hset(q.calls, "1", "3")
    ledger.transaction(lambda pipe: ledger.region_end(pipe, view, 1, 1, [0, 1], '{"states": {}}'))
    assert not ledger.r.exists(keys.result(1))
    assert [k for k in q.all([0, 1]) if ledger.r.exists(k)] == []
    assert ledger.r.hget(ledger.keys.used(ENGINE), "a") == "0"


def test_every_waiting_process_that_fits_is_admitted_even_beyond_the_candidates(ledger: Ledger) -> None:
    join(ledger, "a", 1)
    assert _submit(ledger, 1, [0]) == (None, [1])  # holds the only slot
    n = CANDIDATES + 5
    for pid in range(2, n + 2):
        assert _submit(ledger, pid, [0]) == (None, [])
    join(ledger, "big", n)
    assert [a.pid for a in ledger.admit(ENGINE)] == list(range(2, n + 2))


def test_a_submission_that_saw_an_older_fleet_changes_nothing_and_is_retried(ledger: Ledger) -> None:
    join(ledger, "a", 1)
    stale = ledger.view(ENGINE)
    join(ledger, "b", 2)  # registered after the caller looked
    keys = ledger.keys
    ledger.r.hset(keys.proc(1), mapping={"pid": 1, "nregions": 2, "rcon": "{}", "state": "Submitted"})
    ok, _ = ledger._run("submit", ledger._submit_call(ENGINE, 1, stale))
    assert int(ok) == -1 and ledger.r.hget(keys.proc(1), "state") == "Submitted"
    assert _submit(ledger, 2, [0, 1]) == (None, [2])  # with a fresh look: it fits on b


def test_every_key_a_script_touches_is_declared_in_its_keys(ledger: Ledger, redis_url: str) -> None:
    seen: list[list[str]] = []
    ready, stop = threading.Event(), threading.Event()

    def watch() -> None:
        with redis.Redis.from_url(redis_url, decode_responses=True).monitor() as m:
            ready.set()
            conn = m.connection
            while not stop.is_set():
                line = conn.read_response(timeout=0.2) if conn.can_read(timeout=0.2) else None
                if isinstance(line, str) and KEY_PREFIX in line:
                    seen.append(shlex.split(re.sub(r"^\S+ \[[^]]*\] ", "", line).replace("\\", "")))
                    seen[-1].insert(0, "lua" if " lua]" in line else "client")

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    ready.wait(5)
    join(ledger, "a", 2)
    _submit(ledger, 1, [0, 1])
    _submit(ledger, 2, [0], rcon={"0": "a"})
    _submit(ledger, 3, [0, 1])
    ledger.unqueue(ENGINE, 3)
    view = ledger.view(ENGINE)
    ledger.admitted(ENGINE, RegionEnded.of(
        ledger.transaction(lambda pipe: ledger.region_end(pipe, view, 1, 1, [0, 1], '{}'))[0]).admission)
    ledger.transaction(lambda pipe: ledger.region_begin(pipe, 1, 0, 1, "a", 3.0))  # a worker's region: start, end
    said = WorkerEnd("4 4", '{"Exit code": 0, "Exit reason": "quiescence"}', [0, 1], False)
    ledger.transaction(lambda pipe: ledger.region_end(pipe, view, 1, 0, [0, 1], '{}', 1, said))
    ledger.end(1, None, "test")
    ledger.beat(ENGINE, "a", "epoch-a", 30.0)
    ledger.unregister(ENGINE, "a", "epoch-a")
    ledger.r.get(f"{KEY_PREFIX}monitor-end")  # the monitor has seen everything once it sees this
    deadline = time.monotonic() + 10
    while not any(c[1:] == ["GET", f"{KEY_PREFIX}monitor-end"] for c in list(seen)) and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()
    t.join(5)
    declared: set[str] = set()
    scripts = lua = 0
    for who, *command in seen:
        if command[0].upper() == "EVALSHA":
            scripts += 1
            declared = set(command[3:3 + int(command[2])])
        elif who == "lua":
            lua += 1
            used = {a for a in command[1:] if a.startswith(KEY_PREFIX)}
            assert used <= declared, f"{command} touches undeclared {used - declared}"
    assert scripts >= 9 and lua > 30, [c[:3] for c in seen if c[1].upper() == "EVALSHA"]


def test_the_last_region_end_ends_its_process_done_with_the_reason_merge_results_gives(ledger: Ledger) -> None:
    # the Done reason is chosen in Lua (region_end.lua) as native/results.py merge_results chooses it:
    # from the lowest region whose reason does not defer to another's ("remote stop", "quiescence")
    join(ledger, "a", 3)
    assert _submit(ledger, 1, [0, 1, 2]) == (None, [1])
    keys, r = ledger.keys, ledger.r
    exits = {0: {"Exit code": 0, "Exit reason": "remote stop"}, 1: {"Exit code": 7, "Exit reason": "handler_exit"},
             2: {"Exit code": 5, "Exit reason": "max-steps"}}
    ended = []
    for region in (2, 0, 1):
        said = WorkerEnd("1 1", json.dumps(exits[region]), [0, 1, 2], False)
        view = ledger.view(ENGINE)
        ended.append(RegionEnded.of(ledger.transaction(
            lambda pipe: ledger.region_end(pipe, view, 1, region, [0, 1, 2], '{"states": {}}', 1, said))[0]))  # noqa: B023
    merged = merge_results({x: {"metrics": m} for x, m in exits.items()})["metrics"]
    reason = f"exit code {merged['Exit code']} ({merged['Exit reason']})"
    assert reason == "exit code 7 (handler_exit)"
    assert [e.done for e in ended] == [None, None, reason] and [e.ended for e in ended] == [1, 2, 3]
    assert r.hget(keys.proc(1), "state") == "Done" and r.hget(keys.proc(1), "reason") == reason
    assert r.hget(keys.used(ENGINE), "a") == "0" and sorted(r.hkeys(keys.result(1))) == ["0", "1", "2"]


def test_a_process_with_a_region_that_ended_without_a_result_is_not_ended_done(ledger: Ledger) -> None:
    join(ledger, "a", 2)
    assert _submit(ledger, 1, [0, 1]) == (None, [1])
    view = ledger.view(ENGINE)
    ok = WorkerEnd(None, json.dumps({"Exit code": 0, "Exit reason": "quiescence"}), [0, 1], False)
    ledger.transaction(lambda pipe: ledger.region_end(pipe, view, 1, 0, [0, 1], None, 1,
                                                      WorkerEnd(None, None, [0, 1], False)))
    last = RegionEnded.of(ledger.transaction(lambda pipe: ledger.region_end(pipe, view, 1, 1, [0, 1], "{}", 1, ok))[0])
    assert last.ended == 2 and last.done is None and ledger.r.hget(ledger.keys.proc(1), "state") == "Running"
