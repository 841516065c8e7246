"""After a load test: every process accounted for exactly once, read back from Redis.

*Accounted for* means its record says Done (with the expected result), Killed, or Failed with
a reason.  A process is **lost** when a client submitted it and Redis has no record of it, or it
has not ended when the load test's time is up.  It is **duplicated** when one pid was handed to
two submissions, when its record was ended more than once (its wake list holds more than one
ending), or when a process of this load's user and application appeared among the new pids that
no client submitted.  Afterwards nothing may be left behind: no slot held (a lease of one of the
pids, or busy slots while nothing runs), no key of those pids beyond its record and results
(and the short-lived bookkeeping keys, which must expire), and no engine process on this machine.
"""
from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import redis

from pstack_tasks.config import settings
from pstack_tasks.fleet import store
from pstack_tasks.fleet.keys import Keys
from pstack_tasks.fleet.ledger import Ledger
from pstack_tasks.fleet.records import ENDED, read_result

#: keys of a pid that stay after it ends (each must expire); ``result`` only for a Done process
KEPT = {"proc", "result", "wake", "progress", "log", "abort", "started", "ended", "exits", "beat"}
#: how long the audit lets slots and engines settle after the last process ended
SETTLE_SECONDS = 10.0
_PID_KEY = re.compile(r"^([a-z_]+):(\d+)(?:$|[:.])")


@dataclass
class Outcome:
    """One submission of a load test as its client saw it."""

    index: int
    pid: int | None = None
    kill: bool = False
    submit_seconds: float = 0.0
    state: str = ""
    reason: str = ""


@dataclass
class Audit:
    """Where every process ended, and what the load test found wrong; labels are ``process N``."""

    done: list[int] = field(default_factory=list)
    killed: list[int] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    lost: dict[str, str] = field(default_factory=dict)
    duplicated: dict[str, str] = field(default_factory=dict)
    leftovers: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """Nothing lost or duplicated, nothing left behind (failures are judged by the caller)."""
        return not (self.lost or self.duplicated or self.leftovers)

    def problems(self) -> list[str]:
        """One line per process lost, duplicated or failed, and per leftover."""
        return ([f"lost: {k}: {v}" for k, v in self.lost.items()]
                + [f"duplicated: {k}: {v}" for k, v in self.duplicated.items()]
                + [f"failed: {k}: {v}" for k, v in self.failed.items()]
                + [f"leftover: {x}" for x in self.leftovers])


def audit(r: redis.Redis, keys: Keys, engine: str, expected_delivered: int | None, outcomes: Sequence[Outcome],
          first_pid: int, leftover_processes: Callable[[], list[str]] | None = None) -> Audit:
    """Account for every outcome from Redis's records, then look for leftovers.

    ``expected_delivered``: the "Delivered messages" of every correct run (None: not checked);
    ``first_pid``: the first pid the load could have been given (for processes nobody submitted).
    """
    found = Audit()
    pids = _unique_pids(outcomes, found)
    records = _records(r, keys, pids)
    for pid, (rec, wake) in records.items():
        _account(r, keys, expected_delivered, pid, rec, found)
        if wake > 1:
            found.duplicated[f"process {pid}"] = f"ended {wake} times"
    _extra_processes(r, keys, pids, first_pid, records, found)
    _settle(lambda: _slot_leftovers(r, keys, engine, pids), found)
    done = {pid for pid, (rec, _) in records.items() if rec.get("state") == "Done"}
    found.leftovers += _key_leftovers(r, keys, done, set(pids))
    if leftover_processes is not None:
        _settle(leftover_processes, found, settings().relay_idle + SETTLE_SECONDS)
    return found


def _unique_pids(outcomes: Sequence[Outcome], found: Audit) -> list[int]:
    counts = Counter(o.pid for o in outcomes if o.pid is not None)
    for pid, n in counts.items():
        if n > 1:
            found.duplicated[f"process {pid}"] = f"handed to {n} submissions"
    for o in outcomes:
        if o.pid is None:
            found.failed[f"submission {o.index}"] = o.reason or "no pid"
    return sorted(counts)


def _records(r: redis.Redis, keys: Keys, pids: Sequence[int]) -> dict[int, tuple[dict[str, str], int]]:
    pipe = r.pipeline(transaction=False)
    for pid in pids:
        pipe.hgetall(keys.proc(pid))
        pipe.llen(keys.wake(pid))
    replies = pipe.execute()
    return {pid: (store.text_hash(rec), int(wake)) for pid, rec, wake in zip(pids, replies[::2], replies[1::2])}


def _account(r: redis.Redis, keys: Keys, expected: int | None, pid: int, rec: dict[str, str], found: Audit) -> None:
    """Put one process where its record says it ended."""
    label = f"process {pid}"
    state = rec.get("state")
    if not rec:
        found.lost[label] = "Redis has no record of it (deleted, or lost with a Redis restart)"
    elif state not in ENDED:
        found.lost[label] = f"still {state} when the load test ended"
    elif state == "Killed":
        found.killed.append(pid)
    elif state == "Failed":
        found.failed[label] = rec.get("reason") or "Failed with no reason recorded"
    else:
        problem = _wrong_result(r, keys, expected, pid)
        if problem:
            found.failed[label] = problem
            return
        found.done.append(pid)
        if rec.get("ended") and rec.get("submitted"):
            found.latencies.append(float(rec["ended"]) - float(rec["submitted"]))


def _wrong_result(r: redis.Redis, keys: Keys, expected: int | None, pid: int) -> str | None:
    result = read_result(pid, r, keys)
    if result is None:
        return "Done, but its result is missing"
    got = result.get("metrics", {}).get("Delivered messages")
    if expected is not None and got != expected:
        return f"Done, but delivered {got} messages, not {expected}"
    return None


def _extra_processes(r: redis.Redis, keys: Keys, pids: Sequence[int], first_pid: int,
                     records: dict[int, tuple[dict[str, str], int]], found: Audit) -> None:
    """New pids of this load's user and application that no client was handed."""
    sample = next((rec for rec, _ in records.values() if rec), None)
    if sample is None:
        return
    last = int(r.get(keys.next_pid) or 0)
    others = sorted(set(range(first_pid, last + 1)) - set(pids))
    pipe = r.pipeline(transaction=False)
    for pid in others:
        pipe.hmget(keys.proc(pid), ["user", "app"])
    for pid, (user, app) in zip(others, pipe.execute()):
        if user == sample.get("user") and app == sample.get("app"):
            found.duplicated[f"process {pid}"] = "a process of this load that no client submitted"


def _settle(check: Callable[[], list[str]], found: Audit, seconds: float = SETTLE_SECONDS) -> None:
    """Leftovers that are still there after ``seconds`` (endings settle asynchronously)."""
    deadline = time.monotonic() + seconds
    left = check()
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = check()
    found.leftovers += left


def _slot_leftovers(r: redis.Redis, keys: Keys, engine: str, pids: Sequence[int]) -> list[str]:
    pipe = r.pipeline(transaction=False)
    for pid in pids:
        pipe.hlen(keys.lease(pid))
    out = [f"process {pid} still holds {n} slot(s)" for pid, n in zip(pids, pipe.execute()) if n]
    if not r.scard(keys.running):
        out += [f"{w['engine']}@{w['host']} has {w['busy']} busy slot(s) while no process runs"
                for w in Ledger.of(r, keys).fleet() if w["busy"] and w["engine"] == engine]
    return out


def _key_leftovers(r: redis.Redis, keys: Keys, done: set[int], ours: set[int]) -> list[str]:
    """Keys of our pids that should be gone: engine queues, leases, results of processes that did
    not end Done, and any kept key without an expiry."""
    found: list[tuple[str, str, int]] = []
    for key in r.scan_iter(f"{keys.prefix}*", count=1000):
        m = _PID_KEY.match(str(key)[len(keys.prefix):])
        if m and int(m.group(2)) in ours:
            found.append((str(key), m.group(1), int(m.group(2))))
    pipe = r.pipeline(transaction=False)
    for key, _, _ in found:
        pipe.ttl(key)
    out = []
    for (key, kind, pid), ttl in zip(found, pipe.execute()):
        if kind not in KEPT or (kind == "result" and pid not in done):
            out.append(f"key {key} of process {pid}")
        elif int(ttl) < 0:
            out.append(f"key {key} of process {pid} never expires")
    return out


def local_engines(root: int) -> list[str]:
    """Engines and socat relays running below process ``root`` on this machine (from /proc)."""
    children: dict[int, list[int]] = {}
    args: dict[int, str] = {}
    for entry in _proc_entries():
        pid, ppid, cmdline = entry
        children.setdefault(ppid, []).append(pid)
        args[pid] = cmdline
    out, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        for child in children.get(pid, []):
            frontier.append(child)
            first = args[child].split(" ")[0]
            if "/engines/" in first or first.rsplit("/", 1)[-1] == "socat":
                out.append(f"engine process {child}: {args[child][:120]}")
    return out


def _proc_entries() -> list[tuple[int, int, str]]:
    from pathlib import Path
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            cmdline = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        out.append((int(d.name), ppid, cmdline))
    return out


__all__ = ["Outcome", "Audit", "audit", "local_engines", "KEPT"]
