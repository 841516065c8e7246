"""Running applications under test on the fleet: every app x engine type x region split, checked.

Each case is a process like any other (``run(..., async_=True)`` then ``block``); its result is
given to the app's checkers (:mod:`.checkers`).  Region splits are random but seeded: the same
seed gives the same region maps, so a failure in a split can be run again as it was.  Cases run
one at a time, or ``jobs`` at once as long as the regions in flight fit the engine type's slots.
"""
from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from pstack_tasks.exceptions import PstackError, ServiceUnavailable
from pstack_tasks.fleet import client
from pstack_tasks.fleet.app_pairs import AppPair
from pstack_tasks.fleet.app_view import AppView
from pstack_tasks.fleet.checkers import Checker, CheckOutcome, apply, load_checkers
from pstack_tasks.graph import loader

#: engine types that run no application (they only count time): not tested unless asked for
NOT_SIMULATORS = frozenset({"dummy"})
#: seconds a case may run before it is killed and reported failed
DEFAULT_TIMEOUT = 600.0


@dataclass(frozen=True)
class Split:
    """A region split: ``regions`` regions, devices assigned by ``rmap`` (unnamed ones: region 0)."""

    regions: int
    rmap: Mapping[str, int] = field(default_factory=dict)


def splits(devices: Sequence[str], count: int, seed: int, name: str) -> list[Split]:
    """One region, then ``count`` seeded random splits of 2, 3, ... regions (no more than devices).

    Devices are shuffled by a generator seeded with (seed, app name, regions) and dealt out in
    turn, so every region has devices and the split does not change when other apps are added.
    """
    out = [Split(1)]
    for n in range(2, count + 2):
        if n > len(devices):
            break
        order = list(devices)
        random.Random(f"{seed}/{name}/{n}").shuffle(order)
        out.append(Split(n, {d: i % n for i, d in enumerate(order) if i % n}))
    return out


@dataclass
class PreparedApp:
    """An application ready to run: its checks and its parsed view, or why it cannot be tested."""

    pair: AppPair
    checks: list[Checker] = field(default_factory=list)
    view: AppView | None = None
    error: str | None = None


def prepare(pair: AppPair) -> PreparedApp:
    """Load the checker file and parse the application; an error is kept as one line, not raised."""
    try:
        checks = load_checkers(pair.py)
        view = AppView(loader.load(str(pair.xml)))
    except PstackError as e:
        return PreparedApp(pair, error=str(e))
    return PreparedApp(pair, checks, view)


@dataclass(frozen=True)
class Case:
    """One run: an application, on an engine type, in a split."""

    app: PreparedApp
    engine: str
    split: Split

    @property
    def id(self) -> str:
        """``name[engine-regions]``, as pytest's item ids."""
        return f"{self.app.pair.name}[{self.engine}-{self.split.regions}]"


@dataclass(frozen=True)
class CaseResult:
    """How a case went: each check's outcome, or the error that stopped it; its times."""

    case: Case
    outcomes: tuple[CheckOutcome, ...] = ()
    error: str | None = None
    run_seconds: float = 0.0
    check_seconds: float = 0.0
    pid: int | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and all(o.passed for o in self.outcomes)

    @property
    def failures(self) -> list[CheckOutcome]:
        return [o for o in self.outcomes if not o.passed]


def plan(apps: Iterable[PreparedApp], engines: Sequence[str], count: int, seed: int) -> list[Case]:
    """Every app x engine x split (an app that cannot be tested is one case, on no split)."""
    cases = []
    for app in apps:
        if app.view is None:
            cases.append(Case(app, "-", Split(0)))
            continue
        for engine in engines:
            cases += [Case(app, engine, s) for s in splits(app.view.devices, count, seed, app.pair.name)]
    return cases


def online_engines() -> dict[str, int]:
    """Engine types with a live worker on the fleet, and their slots."""
    slots: dict[str, int] = {}
    for w in client.engines():
        if w.get("alive"):
            slots[w["engine"]] = slots.get(w["engine"], 0) + int(w["slots"])
    return slots


def run_case(case: Case, timeout: float | None = DEFAULT_TIMEOUT,
             started: Callable[[int], None] = lambda pid: None) -> CaseResult:
    """Run one case and apply its checks.  A process that fails is the case's error; an
    unreachable fleet (ServiceUnavailable) is everyone's problem and is raised."""
    app = case.app
    if app.error is not None:
        return CaseResult(case, error=app.error)
    start = time.perf_counter()
    pid = None
    try:
        future = client.run(str(app.pair.xml), rmap=dict(case.split.rmap), engine=case.engine, async_=True)
        pid = future.pid
        started(pid)
        result = client.block(future, timeout=timeout)
    except ServiceUnavailable:
        raise
    except PstackError as e:
        return CaseResult(case, error=f"the process failed: {e}", run_seconds=time.perf_counter() - start, pid=pid)
    except TimeoutError:
        assert pid is not None
        client.kill(pid)
        return CaseResult(case, error=f"no result within {timeout:g} s: process {pid} killed",
                          run_seconds=time.perf_counter() - start, pid=pid)
    ran = time.perf_counter()
    outcomes = apply(app.checks, result, app.view)
    return CaseResult(case, tuple(outcomes), None, ran - start, time.perf_counter() - ran, pid)


class _Slots:
    """The regions in flight per engine type, kept within the fleet's slots (one case at least)."""

    def __init__(self, capacity: Mapping[str, int]) -> None:
        self.capacity, self.used = dict(capacity), {e: 0 for e in capacity}
        self.cond = threading.Condition()

    def take(self, engine: str, n: int) -> None:
        with self.cond:
            self.cond.wait_for(lambda: not self.used.get(engine) or self.used[engine] + n <= self.capacity[engine])
            self.used[engine] = self.used.get(engine, 0) + n

    def give(self, engine: str, n: int) -> None:
        with self.cond:
            self.used[engine] -= n
            self.cond.notify_all()


def run_cases(cases: Sequence[Case], jobs: int = 1, capacity: Mapping[str, int] | None = None,
              timeout: float | None = DEFAULT_TIMEOUT,
              done: Callable[[CaseResult], None] = lambda r: None) -> list[CaseResult]:
    """Run every case (``jobs`` at once within ``capacity`` slots per engine type), in plan order.

    ``done`` hears of each result as it comes.  Ctrl-C kills the processes in flight.
    """
    live: set[int] = set()
    lock = threading.Lock()
    slots = _Slots({c.engine: (capacity or {}).get(c.engine, 1 << 30) for c in cases})

    def one(case: Case) -> CaseResult:
        def started(pid: int) -> None:
            with lock:
                live.add(pid)
        n = case.split.regions if case.app.error is None else 0
        slots.take(case.engine, n)
        try:
            result = run_case(case, timeout, started)
        finally:
            slots.give(case.engine, n)
        with lock:
            live.discard(result.pid or 0)
        done(result)
        return result

    def interrupted() -> KeyboardInterrupt:
        with lock:
            pids = sorted(live)
        for pid in pids:
            client.kill(pid)
        return KeyboardInterrupt(f"killed the processes in flight: {', '.join(map(str, pids))}" if pids else "")

    if jobs <= 1:
        try:
            return [one(c) for c in cases]
        except KeyboardInterrupt:
            raise interrupted() from None
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="pstack-test")
    futures = [pool.submit(one, c) for c in cases]
    try:
        return [f.result() for f in futures]
    except KeyboardInterrupt:
        for f in futures:
            f.cancel()
        raise interrupted() from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
