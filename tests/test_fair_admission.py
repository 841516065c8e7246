"""Fair sharing in the slot ledger, on a real Redis without workers: waiting processes are admitted
round-robin per user, each user's first come first served, and a big gang is still never passed
over for ever (docs/fleet.md, "Admission")."""
from __future__ import annotations

import json

from pstack_tasks.fleet.ledger import Ledger
from support.ledger import ENGINE, join


def _submit(ledger: Ledger, pid: int, user: str, regions: int = 1) -> list[int]:
    keys = ledger.keys
    record = {"pid": pid, "user": user, "engine": ENGINE, "regions": json.dumps(list(range(regions))),
              "nregions": regions, "rcon": "{}", "graph_type": "g", "state": "Submitted"}
    refusal, admitted = ledger.submit(ENGINE, pid, lambda pipe: pipe.hset(keys.proc(pid), mapping=record))
    assert refusal is None
    return [a.pid for a in admitted]


def _end(ledger: Ledger, pid: int) -> list[int]:
    """A running process ends (every region's slot back); who was admitted after it."""
    ending = ledger.end(pid, "Done", "")
    assert ending is not None and ending.ended
    return [a.pid for a in ending.admitted]


def _drain(ledger: Ledger, running: list[int]) -> list[int]:
    """End running processes one at a time until nothing waits; the order processes were admitted."""
    order: list[int] = []
    while running:
        got = _end(ledger, running.pop(0))
        order += got
        running += got
    return order


def test_a_single_run_of_another_user_is_admitted_next_not_behind_a_batch(ledger: Ledger) -> None:
    join(ledger, "a", 1)
    assert _submit(ledger, 1, "alice") == [1]  # holds the only slot
    for pid in range(2, 52):  # alice's batch of 50 waits
        assert _submit(ledger, pid, "alice") == []
    assert _submit(ledger, 100, "bob") == []  # first come, first served would put it 51st
    order = _drain(ledger, [1])
    assert order.index(100) <= 1, order  # at most one of alice's runs before it
    assert [p for p in order if p != 100] == list(range(2, 52))  # alice's own: in order


def test_three_users_are_taken_round_robin_each_in_submission_order(ledger: Ledger) -> None:
    join(ledger, "a", 1)
    assert _submit(ledger, 1, "alice") == [1]
    waiting = {"alice": [11, 12, 13, 14], "bob": [21, 22, 23], "carol": [31, 32]}
    for user, pids in waiting.items():  # each user's whole batch at once, one user after another
        for pid in pids:
            assert _submit(ledger, pid, user) == []
    order = _drain(ledger, [1])
    owner = {pid: user for user, pids in waiting.items() for pid in pids}
    for user, pids in waiting.items():
        assert [p for p in order if owner[p] == user] == pids
    for start in range(0, 6, 3):  # every three turns, each of the three users once
        assert sorted(owner[p] for p in order[start:start + 3]) == ["alice", "bob", "carol"], order
    assert sorted(owner[p] for p in order[6:8]) == ["alice", "bob"], order  # carol has none left
    assert owner[order[8]] == "alice"


def test_a_user_whose_waiting_runs_were_all_killed_is_not_sent_to_the_back(ledger: Ledger) -> None:
    join(ledger, "a", 1)
    assert _submit(ledger, 1, "bob") == [1]
    for pid in range(2, 12):
        assert _submit(ledger, pid, "alice") == []
    for pid in range(12, 15):
        assert _submit(ledger, pid, "bob") == []
    for pid in range(2, 12):  # alice kills her whole batch while it waits
        ledger.unqueue(ENGINE, pid)
        ledger.finish(pid, "Killed", "killed by alice")
    assert _submit(ledger, 20, "alice") == []
    order = _drain(ledger, [1])
    assert order.index(20) <= 1, order  # its own turn now, not behind ten dead ones


def test_a_big_gang_is_admitted_while_another_user_keeps_submitting_single_runs(ledger: Ledger) -> None:
    # Given two slots kept busy by alice's single runs, and bob's gang of two waiting among them
    join(ledger, "a", 2)
    running = [p for pid in (1, 2) for p in _submit(ledger, pid, "alice")]
    assert running == [1, 2]
    for pid in range(3, 13):
        assert _submit(ledger, pid, "alice") == []
    assert _submit(ledger, 100, "bob", regions=2) == []
    # When alice's runs end one at a time, and she submits another each time
    admitted_after: list[int] = []
    nxt = 13
    for _ in range(12):
        got = _end(ledger, running.pop(0))
        running += got
        admitted_after += got
        _submit(ledger, nxt, "alice")
        nxt += 1
        if 100 in admitted_after:
            break
    # Then the gang starts within two turnovers: the slot that freed first is held for it
    assert 100 in admitted_after, admitted_after
    assert admitted_after.index(100) <= 2, admitted_after
    hosts = json.loads(ledger.r.hget(ledger.keys.proc(100), "hosts") or "{}")
    assert sorted(hosts) == ["0", "1"]


def test_a_waiting_list_left_by_an_older_version_is_served_in_its_order(ledger: Ledger) -> None:
    join(ledger, "a", 1)
    assert _submit(ledger, 1, "alice") == [1]
    keys = ledger.keys
    for pid in (5, 3, 4):  # an older version's first come, first served list
        ledger.r.hset(keys.proc(pid), mapping={"pid": pid, "user": "alice", "engine": ENGINE, "regions": "[0]",
                                               "nregions": 1, "rcon": "{}", "graph_type": "g", "state": "Waiting"})
        ledger.r.rpush(keys.waiting(ENGINE), str(pid))
    assert _drain(ledger, [1]) == [5, 3, 4]
