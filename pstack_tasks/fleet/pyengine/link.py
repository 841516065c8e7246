"""One client-served region's side of the engine protocol, in redis-py: what a native engine does
through its socat relay (docs/engine-protocol.md, "Items and queues" and "Ending"), and its end
as a worker region ends (its part of the result stored by the ledger's ``region_end`` script).

The region's *share* of ``<pid>.active`` starts at 1 (the ledger counts client regions when it
admits the process), grows by every item taken, and is given back by the IDLE script
(``native/lua/idle.lua``, the engines' own script) when the region has nothing to do.
"""
from __future__ import annotations

import json
import socket
import time
from typing import Any, cast

from redis.client import Pipeline

from pstack_tasks.exceptions import ProcessFailed
from pstack_tasks.fleet import store
from pstack_tasks.fleet.dispatch import start
from pstack_tasks.fleet.keys import Keys
from pstack_tasks.fleet.ledger import Ledger, RegionEnded
from pstack_tasks.fleet.lifecycle import finish_when_ended
from pstack_tasks.fleet.records import ENDED, part_text
from pstack_tasks.native.items import unpack
from pstack_tasks.native.protocol_cpp import idle_script

#: most items taken from the queue at once, as the native engine's LPOP/BLMPOP
POP_COUNT = 8192


class RegionLink:
    """Redis as region ``region`` of process ``pid`` sees it (``regions``: every region, the
    fleet's and the client's)."""

    def __init__(self, pid: int, region: int, regions: list[int], idle_limit: int) -> None:
        self.pid, self.region, self.regions, self.idle_limit = pid, region, sorted(regions), idle_limit
        self.r, self.keys = store.client(), Keys.current()
        self.qk = self.keys.queues(pid)
        self.queue = self.qk.queue(region)
        self.idle = self.r.register_script(idle_script())
        self.share = 1
        self.calls = 0
        self.host = f"client:{socket.gethostname()}"

    def wait_running(self, timeout: float = 600.0) -> None:
        """Wait until the ledger has admitted the process (before that, its counter is not set)."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.r.hget(self.keys.proc(self.pid), "state")
            if state == "Running":
                return
            if state is None or state in ENDED:
                rec = store.text_hash(self.r.hgetall(self.keys.proc(self.pid)))
                raise ProcessFailed(self.pid, str(state or "gone"), rec.get("reason", "it ended before starting"))
            if time.monotonic() > deadline:
                raise TimeoutError(f"process {self.pid} was not admitted within {timeout:g} s")
            self.r.blmove(self.keys.wake(self.pid), self.keys.wake(self.pid), 0.1, "LEFT", "LEFT")  # type: ignore[arg-type]

    def push(self, items: dict[int, list[str]], counted: bool = True) -> None:
        """Push items to other regions' queues, counted into ``active`` first (same connection)."""
        total = sum(len(v) for v in items.values())
        if not total:
            return
        pipe = self.r.pipeline(transaction=False)
        if counted:
            pipe.incrby(self.qk.active, total)
        for region, texts in items.items():
            if texts:
                pipe.rpush(self.qk.queue(region), *texts)
        pipe.execute()

    def poll(self) -> list[str]:
        """Items waiting in this region's queue, without blocking (each joins the share)."""
        got = cast("list[str] | None", self.r.lpop(self.queue, POP_COUNT))
        self.share += len(got or [])  # the counter counts queue elements
        return unpack(got or [])

    def wait(self, seconds: float) -> list[str]:
        """Nothing to do: give the share back (once), then wait up to ``seconds`` for items."""
        if self.share > 0:
            self.calls += 1
            queues = [self.qk.queue(x) for x in self.regions]
            args = [self.idle_limit, 0, self.share, self.region, self.calls] + [0] * len(queues)
            self.idle(keys=[self.qk.active, self.qk.idle, self.qk.calls, *queues], args=args)
            self.share = 0
        got = self.r.blmpop(max(0.01, seconds), 1, self.queue, direction="LEFT", count=POP_COUNT)
        elements = list(cast("Any", got)[1]) if got else []
        self.share += len(elements)
        return unpack(elements)

    def abort_reason(self) -> str | None:
        """Why the process is being stopped (a kill, a failed region), if it is."""
        reason = self.r.get(self.keys.abort(self.pid))
        return None if reason is None else str(reason)

    def stop_others(self, code: int) -> None:
        """This region ends the run (a halt): every other region gets ``1 <code>``."""
        self.push({x: [f"1 {code}"] for x in self.regions if x != self.region}, counted=False)

    def fail(self, cause: str) -> None:
        """Stop the process for ``cause`` (the other regions see it as the first cause)."""
        self.r.set(self.keys.abort(self.pid), cause, nx=True, ex=3600)

    def end(self, part: dict[str, Any] | None) -> None:
        """The region is over: its part stored (while the process runs), then the process ended
        Done if every fleet region has ended too (else the last fleet region to end ends it)."""
        ledger = Ledger.of(self.r, self.keys)
        engine = str(self.r.hget(self.keys.proc(self.pid), "engine") or "psim")
        view = ledger.view(engine)
        text = None if part is None else part_text(dict(part, host=self.host))

        def steps(pipe: Pipeline) -> None:
            ledger.region_end(pipe, view, self.pid, self.region, self.regions, text)
        reply = ledger.transaction(steps)[-1]
        start(engine, ledger.admitted(engine, RegionEnded.of(reply).admission))
        finish_when_ended(self.pid)


def client_regions(rec: dict[str, str]) -> list[int]:
    """The regions of a process record served by client engines."""
    return [int(x) for x in json.loads(rec.get("client_regions") or "[]")]


__all__ = ["RegionLink", "client_regions", "POP_COUNT"]
