"""Several users on one fleet: who owns a process, who sees it, who may kill it.

Two identities (PSTACK_USER=alice / bob) share the session fleet, through the Python API
(the client's environment) and through the ``pstack`` command (its own environment).
Long-running processes use the dummy engine: it compiles nothing and stops when told.
"""
from __future__ import annotations

import json
import os
import time

import pytest

from pstack_tasks.exceptions import PermissionDenied, ProcessFailed
from pstack_tasks.fleet import store
from pstack_tasks.fleet.client import Future, block, kill, ps, run, status
from pstack_tasks.fleet.keys import Keys
from support.commands import pstack
from support.fleet import WorkerFleet
from support.paths import PSTACK

RING = PSTACK / "ring-oscillator-01.xml"


def as_user(monkeypatch: pytest.MonkeyPatch, user: str, admins: str = "") -> None:
    monkeypatch.setenv("PSTACK_USER", user)
    monkeypatch.setenv("PSTACK_ADMINS", admins)


def long_running() -> Future:
    """A two-region process that runs for a minute unless killed."""
    f = run(RING, rmap={"n1": 1}, engine="dummy", options={"seconds": 60}, async_=True)
    assert isinstance(f, Future)
    deadline = time.monotonic() + 20
    while f.state() != "Running" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert f.state() == "Running"
    return f


def test_a_process_belongs_to_its_creator_and_ps_filters_by_user(monkeypatch: pytest.MonkeyPatch,
                                                                 on_fleet: WorkerFleet) -> None:
    as_user(monkeypatch, "alice")
    a = run(RING, rmap={"n1": 1}, engine="dummy", options={"seconds": 0.1}, async_=True)
    as_user(monkeypatch, "bob")
    b = run(RING, engine="dummy", options={"seconds": 0.1}, async_=True)
    block([a, b], timeout=30)
    assert status(a.pid)["user"] == "alice" and status(b.pid)["user"] == "bob"
    everyone = {p["pid"]: p["user"] for p in ps()}
    assert everyone[a.pid] == "alice" and everyone[b.pid] == "bob"  # bob sees alice's too
    alices = ps(user="alice")
    assert a.pid in {p["pid"] for p in alices} and b.pid not in {p["pid"] for p in alices}
    assert {p["user"] for p in alices} == {"alice"}
    assert ps(user="nobody-at-all") == []


def test_the_os_user_owns_processes_when_no_identity_is_configured(monkeypatch: pytest.MonkeyPatch,
                                                                    on_fleet: WorkerFleet) -> None:
    import getpass
    monkeypatch.delenv("PSTACK_USER", raising=False)
    f = run(RING, engine="dummy", options={"seconds": 0.1}, async_=True)
    block(f, timeout=30)
    assert status(f.pid)["user"] == getpass.getuser()


def test_bob_cannot_kill_alices_process_and_it_keeps_running(monkeypatch: pytest.MonkeyPatch,
                                                              on_fleet: WorkerFleet) -> None:
    as_user(monkeypatch, "alice")
    f = long_running()
    as_user(monkeypatch, "bob")
    with pytest.raises(PermissionDenied) as e:
        kill(f.pid)
    assert str(e.value).startswith(f"process {f.pid} belongs to alice; only alice or an admin")
    assert "you are bob" in str(e.value)
    time.sleep(0.5)  # had anything been set, the regions would be stopping by now
    assert f.state() == "Running"
    assert "killed_by" not in store.client().hgetall(Keys.current().proc(f.pid))
    assert not store.client().exists(Keys.current().abort(f.pid))
    as_user(monkeypatch, "alice")
    assert kill(f.pid) == "Killed"
    assert status(f.pid)["reason"] == "killed by alice"


def test_an_admin_may_kill_anyones_process_and_the_record_says_who(monkeypatch: pytest.MonkeyPatch,
                                                                   on_fleet: WorkerFleet) -> None:
    as_user(monkeypatch, "alice", admins="root, carol")
    f = long_running()
    as_user(monkeypatch, "carol", admins="root, carol")
    assert kill(f.pid) == "Killed"
    rec = status(f.pid)
    assert rec["state"] == "Killed" and rec["reason"] == "killed by carol"
    with pytest.raises(ProcessFailed, match="killed by carol"):
        block(f, timeout=5)


def test_an_admin_list_does_not_make_everyone_an_admin(monkeypatch: pytest.MonkeyPatch,
                                                       on_fleet: WorkerFleet) -> None:
    as_user(monkeypatch, "alice", admins="carol")
    f = long_running()
    as_user(monkeypatch, "bob", admins="carol")
    with pytest.raises(PermissionDenied, match="belongs to alice"):
        kill(f.pid)
    assert f.state() == "Running"
    as_user(monkeypatch, "alice", admins="carol")
    assert kill(f.pid) == "Killed"


def test_ps_and_kill_from_the_shell_as_two_users(on_fleet: WorkerFleet) -> None:
    base = {k: v for k, v in os.environ.items() if k not in ("PSTACK_USER", "PSTACK_ADMINS")}
    alice, bob = dict(base, PSTACK_USER="alice"), dict(base, PSTACK_USER="bob")
    admin = dict(base, PSTACK_USER="ops", PSTACK_ADMINS="ops")
    started = []
    for env in (alice, alice, bob):
        p = pstack("run", "--async", "-e", "dummy", "--option", "seconds=60", "--rmap", '{"n1": 1}', str(RING),
                   env=env)
        assert p.returncode == 0, p.stderr
        started.append(int(p.stdout.strip()))
    a1, a2, b1 = started

    p = pstack("ps", env=bob)
    assert p.returncode == 0, p.stderr
    header, *rows = p.stdout.splitlines()
    assert "USER" in header.split()
    owners = {int(r.split()[0]): r.split()[3] for r in rows}
    assert owners[a1] == owners[a2] == "alice" and owners[b1] == "bob"  # every user's, with the owner

    p = pstack("ps", "-r", "-u", "alice", env=bob)
    assert {r["pid"] for r in json.loads(p.stdout)} >= {a1, a2}
    assert {r["user"] for r in json.loads(p.stdout)} == {"alice"}
    p = pstack("ps", "-r", "--mine", env=bob)
    assert [r["pid"] for r in json.loads(p.stdout) if r["state"] != "Killed"][:1] == [b1]
    assert {r["user"] for r in json.loads(p.stdout)} == {"bob"}

    p = pstack("kill", str(a1), "999999", str(b1), env=bob)  # one refused, one unknown, the other still killed
    assert p.returncode == 1
    assert f"process {a1} belongs to alice; only alice or an admin" in p.stderr
    assert "no process 999999 (unknown, or its record has expired)" in p.stderr
    assert p.stdout.splitlines() == [f"{b1} Killed"]
    assert status(a1)["state"] == "Running"

    p = pstack("kill", str(a1), env=alice)
    assert (p.returncode, p.stdout.strip()) == (0, f"{a1} Killed"), p.stderr
    p = pstack("kill", str(a2), env=admin)
    assert (p.returncode, p.stdout.strip()) == (0, f"{a2} Killed"), p.stderr
    reasons = {r["pid"]: r["reason"] for r in json.loads(pstack("ps", "-r", env=bob).stdout)}
    assert (reasons[a1], reasons[a2], reasons[b1]) == ("killed by alice", "killed by ops", "killed by bob")


def test_ps_user_and_mine_together_is_a_usage_error(on_fleet: WorkerFleet) -> None:
    p = pstack("ps", "-u", "alice", "--mine", env=dict(os.environ))
    assert p.returncode == 2 and "not both" in p.stderr
