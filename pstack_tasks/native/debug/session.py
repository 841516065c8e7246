"""A step-debugger session: the application's own handlers, one event at a time, under Python control.

``debug(app)`` builds the graph type's debug engine (``engine_build.py``), starts it on the
instance (``channel.py``) and returns a :class:`Session`: ``step``, ``until``, ``break_when`` +
``cont``, ``state``/``set_state``, ``pending``, ``inject``, ``log`` and ``result``.  With a region
map the split is simulated in the one engine, each region with its own ready and pending queues,
so every region can be stepped alone and the messages between regions are seen in ``pending()``.
docs/debugging.md, "The step debugger", says what a step is and in which order events run.
"""
from __future__ import annotations

import json
import os
from array import array
from collections.abc import Callable
from typing import Any

from pstack_tasks.exceptions import DebugError
from pstack_tasks.graph import loader
from pstack_tasks.graph.application import Application
from pstack_tasks.native.debug.channel import DebugEngineProcess
from pstack_tasks.native.debug.engine_build import build_debug_engine
from pstack_tasks.native.debug.events import Event, EventReader, Message, Report
from pstack_tasks.native.debug.layout import ScalarField, StateLayout, check_break_value, check_operator, field_at
from pstack_tasks.native.items import PayloadCodec
from pstack_tasks.native.split_cache import RegionMap, resolve

#: the events a cont() keeps for log() (the last ones); a step keeps every one of its own
KEEP_EVENTS = 1000
#: the reserved external whose messages halt the run with their ``code`` (graph_schema's; fleet/pyengine too)
HALT_DEVICE = "__halt__"
#: until() gives up after this many events unless told otherwise
UNTIL_MAX_STEPS = 100_000


class Session:
    """One debug session over one application (see the module docstring)."""

    def __init__(self, app: Application, rmap: RegionMap = None, level: int = 1) -> None:
        self.app = app
        self.name = os.path.basename(app.file)
        regions, used = resolve(app, rmap)[:2]
        self.regions = used
        pos_of = {r: i for i, r in enumerate(used)}
        positions = array("I", (pos_of[r] for r in regions))
        self.reader = EventReader(app, used, len(used) > 1)
        self._layouts: dict[int, StateLayout] = {}
        self._breaks: dict[int, str] = {}
        self._next_break = 1
        engine, type_hash = build_debug_engine(app.graph_type)
        self.engine = DebugEngineProcess(engine, app, type_hash, positions, level)
        self.events_run = 0
        self.ended = False
        self.exit_code = 0
        self.exit_reason = ""
        try:
            self._log = self._report(self.engine.read_reply(), "started")  # every OnInit ran
            self._tell_halt()
        except BaseException:
            self.engine.close()
            raise

    # ---- moving ---------------------------------------------------------------------------------
    def step(self, n: int = 1, region: int | None = None) -> Report:
        """Run ``n`` events (each one send, one delivery or one idle round), of ``region`` alone if
        given (a region with nothing to do stops early), and return them."""
        self._movable()
        if n < 1:
            raise DebugError(f"step: n must be 1 or more, not {n!r}")
        pos = self._position(region)
        reply = self.engine.command(f"run {int(n)} {pos} {min(max(int(n), 1), KEEP_EVENTS)} 0")
        self._log = self._report(reply, "")
        return self._log

    def until(self, predicate: Callable[[Session], Any], max_steps: int = UNTIL_MAX_STEPS,
              region: int | None = None) -> Report:
        """Step until ``predicate(session)`` is true after an event (or the run ends, or a
        breakpoint is hit); refused after ``max_steps`` events where it never held.  While it
        runs, ``log()`` holds its events so far (``s.log()[-1]`` is the event just run)."""
        self._movable()
        if max_steps < 1:
            raise DebugError(f"until: max_steps must be 1 or more, not {max_steps!r}")
        pos = self._position(region)
        events: list[Event] = []
        ran = 0
        why = ""
        while ran < max_steps:
            report = self._report(self.engine.command(f"run 1 {pos} 1 1"), "")
            ran += report.ran
            events = (events + list(report))[-KEEP_EVENTS:]
            self._log = Report(events, ran, max(0, ran - len(events)), "running")  # what the predicate sees
            if report.ran == 0 or self.ended or report.why.startswith(("breakpoint", "interrupted")):
                why = report.why or f"region {region} has nothing to do"
                break
            if predicate(self):
                why = "the predicate holds"
                break
        self._log = Report(events, ran, max(0, ran - len(events)), why or "")
        if not why:
            raise DebugError(f"until: the predicate did not hold within {max_steps} events "
                             "(the session stays where it stopped; step on, or raise max_steps)")
        return self._log

    def cont(self, max_steps: int = 0, region: int | None = None) -> Report:
        """Run to the end, or to the next breakpoint (or ``max_steps`` events, 0: no limit)."""
        self._movable()
        reply = self.engine.command(f"run {int(max_steps)} {self._position(region)} {KEEP_EVENTS} 1")
        self._log = self._report(reply, "")
        return self._log

    def log(self) -> Report:
        """The events of the last stop: what the last step, until or cont ran (a long cont keeps its last ones)."""
        return self._log

    def region(self, number: int) -> RegionView:
        """Region ``number`` of the split, to step on its own."""
        self._position(number)
        return RegionView(self, number)

    # ---- looking and changing -------------------------------------------------------------------
    def state(self, device: str) -> dict[str, Any]:
        """The state of ``device`` now, ``{field: value}`` (arrays and tuples included)."""
        d = self._device(device)
        return self._layout(d).read(self._state_bytes(d))

    def set_state(self, device: str, **fields: Any) -> None:
        """Change state fields of ``device``; its ReadyToSend is looked at again."""
        d = self._device(device)
        data = self._layout(d).write(self._state_bytes(d), device, fields)
        self._ok(self.engine.command(f"set {d} {data.hex()}"))

    def pending(self) -> list[Message]:
        """The messages in flight, oldest (next delivered) first."""
        lines = self.engine.command("pending")
        return [self.reader.message(line.split()[1:]) for line in lines if line.startswith("P ")]

    def ready(self) -> dict[int, list[str]]:
        """The devices waiting for their turn to send, per region, in the order they will get it."""
        out: dict[int, list[str]] = {}
        for line in self.engine.command("ready"):
            if line.startswith("R "):
                words = line.split()[1:]
                out[self.regions[int(words[0])]] = [self.app.instance.names[int(w)] for w in words[1:]]
        return out

    def inject(self, device: str, pin: str, **fields: Any) -> Message:
        """Put a message in flight as if ``device`` sent it on output ``pin`` (to every edge of the
        pin; ``index=k`` for edge k of an indexed pin); it is delivered, and counted, like any other."""
        self._movable()
        d = self._device(device)
        dt = self._device_type(d)
        names = [p.name for p in dt.output_pins]
        if pin not in names:
            raise DebugError(f"device '{device}' (type '{dt.id}') has no output pin {pin!r}; "
                             f"its output pins: {', '.join(names) or 'none'}")
        index = fields.pop("index", None) if dt.output_pins[names.index(pin)].indexed else None
        mt = self.app.graph_type.message_type(dt.output_pins[names.index(pin)].message_type)
        assert mt is not None
        words = self._encode(PayloadCodec(mt.payload), mt.id, fields)
        before = {str(m) for m in self.pending()}
        self._ok(self.engine.command(
            f"inject {d} {names.index(pin)} {-1 if index is None else int(index)} {len(words)} {' '.join(words)}"))
        added = [m for m in self.pending() if str(m) not in before]
        if not added:
            raise DebugError(f"inject: output pin '{pin}' of device '{device}' has no edges: nothing is in flight")
        return added[0]

    def break_when(self, device: str, field: str, op: str, value: int | float) -> int:
        """A breakpoint checked in the engine after every event: ``cont`` (and ``until``) stop when
        ``device``'s scalar state ``field`` ``op`` ``value`` becomes true.  Returns its number."""
        d = self._device(device)
        fld = self._layout(d).scalar(device, field)
        code = check_operator(op)
        text = check_break_value(fld, value, f"field {field!r} of device '{device}'")
        number = self._next_break
        self._ok(self.engine.command(f"break {number} {d} {fld.offset} {fld.code} {code} {text}"))
        self._breaks[number] = f"{device}.{field} {op} {value}"
        self._next_break += 1
        return number

    def breakpoints(self) -> dict[int, str]:
        """The breakpoints by number."""
        return dict(self._breaks)

    def clear(self, number: int | None = None) -> None:
        """Remove breakpoint ``number`` (all of them without one)."""
        if number is not None and number not in self._breaks:
            raise DebugError(f"no breakpoint {number}; the breakpoints: {sorted(self._breaks) or 'none'}")
        self._ok(self.engine.command(f"unbreak {-1 if number is None else number}"))
        if number is None:
            self._breaks.clear()
        else:
            del self._breaks[number]

    def result(self, full_state: bool = False) -> dict[str, Any]:
        """The run's result as psim gives it (``states`` and ``metrics``), as things are now."""
        lines = self.engine.command(f"result {1 if full_state else 0}")
        result: dict[str, Any] = json.loads("\n".join(lines[:-1]))
        if not self.ended:
            result["metrics"]["Exit reason"] = "running (the debug session has not ended)"
        return result

    def close(self) -> None:
        """Stop the debug engine."""
        self.engine.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        split = f", {len(self.regions)} regions" if len(self.regions) > 1 else ""
        where = f"ended ({self.exit_reason}, exit code {self.exit_code})" if self.ended else "stopped"
        return f"<debug session of {self.name}{split}: {self.events_run} events, {where}>"

    # ---- helpers --------------------------------------------------------------------------------
    def _tell_halt(self) -> None:
        """Point the engine at the reserved external ``__halt__``, if the graph has one: a message
        delivered to it ends the session with the message's ``code`` (exit reason "halt")."""
        d = self.app.instance.index.get(HALT_DEVICE)
        if d is None:
            return
        pins = self._device_type(d).input_pins
        mt = self.app.graph_type.message_type(pins[0].message_type) if pins else None
        found = field_at(mt.payload, "code") if mt is not None else None
        where = f"{found.offset} {found.code}" if isinstance(found, ScalarField) else "-1 i"
        self._ok(self.engine.command(f"halt {d} {where}"))

    def _report(self, lines: list[str], why: str) -> Report:
        self._ok(lines)
        events, dropped = self.reader.events(lines)
        words = lines[-1].split()
        ran, hit, interrupted = int(words[4]), int(words[5]), words[6:7] == ["1"]
        self.events_run += ran
        if words[1] == "1":
            self.ended, self.exit_code, self.exit_reason = True, int(words[2]), words[3]
        if interrupted and not self.ended:
            why = "interrupted (Ctrl-C)"
        if not why:
            why = (f"breakpoint {hit} ({self._breaks.get(hit, '?')})" if hit >= 0
                   else f"ended: {self.exit_reason}, exit code {self.exit_code}" if self.ended else "stopped")
        return Report(events, ran, dropped, why)

    @staticmethod
    def _ok(lines: list[str]) -> None:
        if lines and lines[-1].startswith("?"):
            raise DebugError(f"the debug engine refused: {lines[-1][2:]}")

    def _movable(self) -> None:
        if self.ended:
            raise DebugError(f"the session has ended ({self.exit_reason}, exit code {self.exit_code}): "
                             "nothing more can run; result() gives its result")

    def _position(self, region: int | None) -> int:
        if region is None:
            return -1
        if region not in self.regions:
            raise DebugError(f"no region {region!r} in this session; its regions: "
                             f"{', '.join(map(str, self.regions))}")
        return self.regions.index(region)

    def _device(self, device: str) -> int:
        d = self.app.instance.index.get(device)
        if d is None:
            raise DebugError(f"no device {device!r} in {self.name}")
        return d

    def _device_type(self, d: int) -> Any:
        return self.app.graph_type.device_types[self.app.instance.dev_type[d]]

    def _layout(self, d: int) -> StateLayout:
        t = self.app.instance.dev_type[d]
        if t not in self._layouts:
            self._layouts[t] = StateLayout(self._device_type(d))
        return self._layouts[t]

    def _state_bytes(self, d: int) -> bytes:
        lines = self.engine.command(f"get {d}")
        self._ok(lines)
        return bytes.fromhex(lines[0].split(" ", 1)[1] if " " in lines[0] else "")

    @staticmethod
    def _encode(codec: PayloadCodec, message_type: str, fields: dict[str, Any]) -> list[str]:
        from pstack_tasks.graph.values import ValueError_
        known = [f.name for f in codec.packer.spec.fields]
        unknown = sorted(set(fields) - set(known))
        if unknown:
            raise DebugError(f"message type '{message_type}' has no field {unknown[0]!r}; "
                             f"its fields: {', '.join(known) or 'none'}")
        try:
            return codec.encode(fields)
        except ValueError_ as e:
            raise DebugError(f"inject: a field of message type '{message_type}': {e}") from None


class RegionView:
    """One region of a split session: ``step``, ``until`` and ``cont`` of that region alone."""

    def __init__(self, session: Session, number: int) -> None:
        self.session = session
        self.number = number

    def step(self, n: int = 1) -> Report:
        return self.session.step(n, region=self.number)

    def until(self, predicate: Callable[[Session], Any], max_steps: int = UNTIL_MAX_STEPS) -> Report:
        return self.session.until(predicate, max_steps, region=self.number)

    def cont(self, max_steps: int = 0) -> Report:
        return self.session.cont(max_steps, region=self.number)

    def pending(self) -> list[Message]:
        """The messages in flight to this region."""
        return [m for m in self.session.pending() if m.region in (self.number, None)]

    def __repr__(self) -> str:
        return f"<region {self.number} of {self.session!r}>"


def debug(app: str | bytes | os.PathLike[str], rmap: RegionMap = None, level: int = 1) -> Session:
    """A step-debugger session over ``app`` (a path or XML text), split by ``rmap`` if given.

    Raises:
        GraphError: the file is malformed, or has a v4 supervisor (not run by the debugger).
        BuildError: a handler does not compile.
    """
    return Session(loader.load(app), rmap, level)
