"""Worker matching in the slot ledger, on a real Redis without workers: regions go only to workers
that serve their process's group or user, a process no worker serves is refused at submit naming
what it needs, and a process waiting for its busy hosts does not hold up hosts it cannot use."""
from __future__ import annotations

import json

from pstack_tasks.fleet.ledger import Ledger
from pstack_tasks.fleet.matching import Serving
from pstack_tasks.fleet.scripts import CANDIDATES
from support.ledger import ENGINE, join


def _submit(ledger: Ledger, pid: int, user: str, group: str | None = None, regions: int = 1,
            rcon: dict[str, str] | None = None) -> tuple[str | None, list[int]]:
    keys = ledger.keys
    record = {"pid": pid, "user": user, "engine": ENGINE, "regions": json.dumps(list(range(regions))),
              "nregions": regions, "rcon": json.dumps(rcon or {}), "graph_type": "g", "state": "Submitted"}
    if group is not None:
        record["group"] = group
    refusal, admitted = ledger.submit(ENGINE, pid, lambda pipe: pipe.hset(keys.proc(pid), mapping=record))
    return refusal, [a.pid for a in admitted]


def _hosts(ledger: Ledger, pid: int) -> list[str]:
    return sorted(json.loads(ledger.r.hget(ledger.keys.proc(pid), "hosts") or "{}").values())


def test_regions_go_only_to_workers_that_serve_their_group_or_user(ledger: Ledger) -> None:
    join(ledger, "lab", 2, Serving(groups=("lab",)))
    join(ledger, "bobs", 1, Serving(users=("bob",)))
    join(ledger, "open", 2)
    assert _submit(ledger, 1, "alice", "lab", regions=2) == (None, [1])
    assert _hosts(ledger, 1) == ["lab", "open"]  # where most slots are free, among those serving group lab
    assert _submit(ledger, 2, "bob", regions=2) == (None, [2])
    assert _hosts(ledger, 2) == ["bobs", "open"]  # lab serves group lab, and bob's run has no group
    assert _submit(ledger, 3, "carol") == (None, [])  # only open serves her, and it is full; lab idles
    assert _submit(ledger, 4, "bob", "lab") == (None, [4])  # behind carol's, but lab serves it: it starts
    assert _hosts(ledger, 4) == ["lab"]
    ending = ledger.end(1, "Done", "")  # lab and open get a slot back: carol's run takes open's
    assert ending is not None and [a.pid for a in ending.admitted] == [3]
    assert _hosts(ledger, 3) == ["open"]


def test_a_process_no_worker_serves_is_refused_naming_what_it_needs(ledger: Ledger) -> None:
    join(ledger, "lab", 2, Serving(groups=("lab",)))
    join(ledger, "bobs", 1, Serving(users=("bob",)))
    refusal, _ = _submit(ledger, 1, "carol", "physics")
    assert refusal == ("no t worker serves group physics or user carol: the 2 online serve other groups or users "
                       "(start one: pstack worker --engine t --group G or --user U)")
    refusal, _ = _submit(ledger, 2, "carol")
    assert refusal is not None and refusal.startswith("no t worker serves user carol:")
    refusal, _ = _submit(ledger, 3, "alice", "lab", regions=3)
    assert refusal == "the process needs 3 t slots at once; the t workers serving group lab or user alice have 2"
    refusal, _ = _submit(ledger, 5, "bob", "lab", regions=4)
    assert refusal == "the process needs 4 t slots at once; the t fleet has 3"  # every worker serves bob in lab
    refusal, _ = _submit(ledger, 4, "carol", "lab", rcon={"0": "bobs"})
    assert refusal == "a region is pinned to bobs, whose t worker does not serve group lab or user carol"
    assert ledger.r.zcard(ledger.keys.waiting(ENGINE)) == 0


def test_a_process_waiting_for_its_busy_group_does_not_hold_up_another_groups_idle_worker(ledger: Ledger) -> None:
    join(ledger, "lab", 1, Serving(groups=("lab",)))
    join(ledger, "phys", 1, Serving(groups=("phys",)))
    assert _submit(ledger, 1, "alice", "lab") == (None, [1])
    n = CANDIDATES * 3  # more than one admission names: the later call looks further
    for pid in range(2, n + 2):
        assert _submit(ledger, pid, "alice", "lab") == (None, [])
    assert _submit(ledger, 100, "alice", "phys") == (None, [100])  # behind alice's lab runs, yet it starts
    assert _hosts(ledger, 100) == ["phys"]
    _submit(ledger, 101, "alice", "phys")
    ending = ledger.end(100, "Done", "")
    assert ending is not None and [a.pid for a in ending.admitted] == [101]


def test_a_waiting_gang_claims_the_hosts_that_serve_it_so_it_is_not_passed_over(ledger: Ledger) -> None:
    join(ledger, "lab", 1, Serving(groups=("lab",)))
    join(ledger, "open", 1)
    assert _submit(ledger, 1, "carol") == (None, [1])  # on lab? no: lab serves group lab only
    assert _hosts(ledger, 1) == ["open"]
    assert _submit(ledger, 2, "alice", "lab", regions=2) == (None, [])  # needs lab and open
    assert _submit(ledger, 3, "carol", "lab") == (None, [])  # lab is free, but the gang claimed it
    ending = ledger.end(1, "Done", "")
    assert ending is not None and [a.pid for a in ending.admitted] == [2]
    assert _hosts(ledger, 2) == ["lab", "open"]


def test_the_process_table_shows_a_process_s_group_beside_its_user() -> None:
    from pstack_tasks.ui.tables import plain_text, process_table
    rows = [{"pid": 7, "state": "Done", "user": "ann", "group": "lab", "regions": [0]},
            {"pid": 8, "state": "Done", "user": "bob", "group": None, "regions": [0]}]
    text = plain_text(process_table(rows))
    assert " ann/lab " in text and " bob " in text and "bob/" not in text


def test_a_run_admitted_out_of_turn_does_not_send_newcomers_behind_the_runs_it_passed(ledger: Ledger) -> None:
    join(ledger, "lab", 1, Serving(groups=("lab",)))
    join(ledger, "phys", 1, Serving(groups=("phys",), users=("carol",)))
    assert _submit(ledger, 1, "alice", "lab") == (None, [1])
    for pid in range(2, 7):  # alice's lab runs wait for the busy lab worker
        assert _submit(ledger, pid, "alice", "lab") == (None, [])
    assert _submit(ledger, 7, "alice", "phys") == (None, [7])  # passes them: the phys worker is free
    assert _submit(ledger, 8, "carol") == (None, [])  # phys is busy now
    waiting = ledger.r.zrange(ledger.keys.waiting(ENGINE), 0, -1)
    assert waiting.index("8") <= 1, waiting  # in the turn being served, not after alice's five
