"""The ledger's Lua scripts: their text (``fleet/lua/*.lua``), and the KEYS and ARGV of a call.

Every key a script touches is passed in ``KEYS[]`` (Redis requires it for scripts, Redis Cluster
routes by it and ACL key patterns are checked against it); none is built from a prefix inside
Lua.  The scripts read KEYS and ARGV front to back (``next_key``/``next_arg`` in ``lib.lua``), so
:class:`Call` builds both lists in that same order, one section per step of the script.
Which keys a step needs can depend on Redis's state (the registered hosts, the head of the
waiting list): the caller reads them first (:class:`FleetView`), and a script that finds them
changed does nothing of that step and says so (the caller reads again and retries).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import resources

from pstack_tasks.fleet.keys import Keys

#: scripts that start with the shared functions of lib.lua
_WITH_LIB = frozenset({"submit", "admit", "region_end", "finish", "end", "unqueue"})
#: waiting processes a caller names to an admission (more are admitted by asking again)
CANDIDATES = 4
#: the most waiting processes one admission looks at: when the first ones wait for hosts that are
#: busy, those behind them get the slots of the other hosts (worker groups) only if they are among
#: this many (docs/fleet.md, "Admission")
LOOKAHEAD = 256

Arg = str | int | float


@cache
def source(name: str) -> str:
    """The text of script ``name`` as Redis runs it (lib.lua first, where it uses it)."""
    lua = resources.files("pstack_tasks.fleet").joinpath("lua")
    body = lua.joinpath(f"{name}.lua").read_text()
    return lua.joinpath("lib.lua").read_text() + body if name in _WITH_LIB else body


@dataclass(frozen=True)
class FleetView:
    """What a caller saw of one engine type before a script call: its registered hosts and the
    head of its waiting list."""

    engine: str
    hosts: list[str]
    waiting: list[str]


@dataclass
class Call:
    """The KEYS and ARGV of one script call, appended in the order the script reads them."""

    keys: list[str] = field(default_factory=list)
    args: list[Arg] = field(default_factory=list)

    def key(self, *names: str) -> Call:
        self.keys.extend(names)
        return self

    def arg(self, *values: Arg) -> Call:
        self.args.extend(values)
        return self

    def fleet(self, k: Keys, view: FleetView) -> Call:
        """lib.lua ``read_fleet``: cap, used, serves, then each host with its alive and epoch keys."""
        self.key(k.cap(view.engine), k.used(view.engine), k.serves(view.engine)).arg(len(view.hosts))
        for host in view.hosts:
            self.arg(host).key(k.alive(view.engine, host), k.epoch(view.engine, host))
        return self

    def admission(self, k: Keys, view: FleetView, also: int | None = None) -> Call:
        """lib.lua ``admit``: waiting, running, fair, then the candidates at the head of the waiting
        list (``also``: a process about to join it, named after them)."""
        pids = list(view.waiting)
        if also is not None and str(also) not in pids:
            pids.append(str(also))
        self.key(k.waiting(view.engine), k.running, k.fair(view.engine)).arg(len(pids))
        for pid in pids:
            q = k.queues(pid)
            self.arg(pid).key(k.proc(pid), k.lease(pid), q.active, q.idle, q.calls)
        return self

    def finish(self, k: Keys, pid: int) -> Call:
        """lib.lua ``finish``: the process's record and the keys that end with it."""
        return self.key(k.proc(pid), k.running, k.result(pid), k.wake(pid), k.abort(pid), k.started(pid),
                        k.ended(pid))


__all__ = ["source", "Call", "FleetView", "CANDIDATES", "LOOKAHEAD"]
