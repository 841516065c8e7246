"""What a debug session reports: events (a send, a delivery, an idle round, the end), messages
in flight, and the report of one stop; read from the debug engine's reply lines.

Reply lines (``debug_scheduler.cpp``, ``debug_commands.cpp``):
``E <kind> <region> <src> <pin> <index> <ndst> <dst>... F <nfields> <f>...`` for an event,
``L <text>`` for a handler log line of the event before, ``E end <code> <reason>`` when the run
ended, ``P <injected> ...`` (the same words after the kind) for a message in flight, ``D <n>`` for
events run but not kept.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pstack_tasks.graph.application import Application
from pstack_tasks.native.items import PayloadCodec

#: the index of a send to the v4 supervisor (handled at once: its replies and broadcasts are part of the send)
TO_SUPERVISOR = -3


@dataclass(frozen=True, repr=False)
class Event:
    """One thing that happened: ``send`` (OnSend ran; the message is now in flight), ``cancel``
    (OnSend cleared ``*doSend``), ``deliver`` (OnReceive ran at each destination), ``idle`` (an
    OnHardwareIdle round over every device), ``quiescent`` (nothing left: the run ends),
    ``supervisor-idle`` (OnSupervisorIdle ran: the graph was idle), ``start`` (every OnInit ran),
    ``end`` (the run ended: ``code`` and ``reason``).  A send to a v4 supervisor has the
    destination ``supervisor``: its OnReceive, replies and broadcasts ran with it."""

    kind: str
    region: int | None = None
    device: str = ""               #: the sender, for send, cancel and deliver
    pin: str = ""                  #: the sender's output pin
    destinations: tuple[str, ...] = ()
    fields: dict[str, Any] = field(default_factory=dict)
    index: int | None = None       #: the edge of an indexed send (sendIndex)
    logs: tuple[str, ...] = ()     #: handler_log lines the event printed
    code: int = 0                  #: the exit code (end), the round (idle)
    reason: str = ""               #: the exit reason (end)

    def __str__(self) -> str:
        where = f"[region {self.region}] " if self.region is not None else ""
        if self.kind in ("send", "deliver"):
            arrow = "->" if self.destinations else "-> (no destination)"
            text = f"{where}{self.kind} {self.device}:{self.pin} {arrow} {', '.join(self.destinations)} {self.fields}"
        elif self.kind == "cancel":
            text = f"{where}cancel {self.device}:{self.pin} (OnSend cleared *doSend)"
        elif self.kind == "idle":
            text = f"OnHardwareIdle round {self.code}"
        elif self.kind == "end":
            text = f"end: {self.reason}, exit code {self.code}"
        elif self.kind == "supervisor-idle":
            text = "OnSupervisorIdle"
        elif self.kind == "start":
            text = "start: every device's OnInit ran"
        else:
            text = "quiescent: nothing is ready and nothing in flight"
        return "\n".join([text, *(f"  {line}" for line in self.logs)])

    __repr__ = __str__


@dataclass(frozen=True, repr=False)
class Message:
    """A message in flight to one region: sent, not yet delivered there."""

    region: int | None  #: None in a session of one region
    source: str
    pin: str
    destinations: tuple[str, ...]
    fields: dict[str, Any]
    index: int | None = None
    injected: bool = False

    def __str__(self) -> str:
        how = " (injected)" if self.injected else ""
        where = f"[region {self.region}] " if self.region is not None else ""
        return f"{where}{self.source}:{self.pin} -> {', '.join(self.destinations)} {self.fields}{how}"

    __repr__ = __str__


class Report(list[Event]):
    """The events of one stop (the last ones kept, in order), and why it stopped."""

    def __init__(self, events: list[Event], ran: int, dropped: int, why: str) -> None:
        super().__init__(events)
        self.ran = ran          #: events run
        self.dropped = dropped  #: events run but not kept (a long cont keeps the last ones)
        self.why = why

    def __repr__(self) -> str:
        lines = [str(e) for e in self]
        if self.dropped:
            lines.insert(0, f"({self.dropped} earlier events not kept)")
        lines.append(f"-- {self.ran} event{'s' if self.ran != 1 else ''}; {self.why}")
        return "\n".join(lines)

    __str__ = __repr__


class EventReader:
    """Turns reply lines into events and messages, naming devices, pins and fields."""

    def __init__(self, app: Application, region_numbers: list[int], split: bool) -> None:
        self.app = app
        self.gt = app.graph_type
        self.names = app.instance.names
        self.region_numbers = region_numbers
        self.split = split
        self._codecs: dict[str, PayloadCodec] = {}

    def _codec(self, message_type: str) -> PayloadCodec:
        if message_type not in self._codecs:
            mt = self.gt.message_type(message_type)
            assert mt is not None
            self._codecs[message_type] = PayloadCodec(mt.payload)
        return self._codecs[message_type]

    def message_words(self, words: list[str]) -> dict[str, Any]:
        """The named parts of ``<region> <src> <pin> <index> <ndst> <dst>... F <nfields> <f>...``
        (a send, cancel or delivery, or a message in flight)."""
        pos, src, pin, index, ndst = (int(w) for w in words[:5])
        dt = self.gt.device_types[self.app.instance.dev_type[src]]
        op = dt.output_pins[pin]
        fields = words[5 + ndst + 2:]
        dsts = tuple(self.names[int(w)] for w in words[5:5 + ndst]) if index != TO_SUPERVISOR else ("supervisor",)
        return {"region": self.region_of(pos), "device": self.names[src], "pin": op.name,
                "index": index if index >= 0 else None, "destinations": dsts,
                "fields": self._codec(op.message_type).decode(tuple(fields)) if fields else {}}

    def region_of(self, pos: int) -> int | None:
        """The region number of a region position; None in a session of one region."""
        return self.region_numbers[pos] if self.split and pos >= 0 else None

    def event(self, words: list[str], logs: list[str]) -> Event:
        """The event of an ``E`` line's words (after the ``E``) and the log lines that followed it."""
        kind, rest = words[0], words[1:]
        if kind == "end":
            return Event("end", code=int(rest[0]), reason=" ".join(rest[1:]))
        if kind in ("send", "deliver", "cancel"):
            parts = self.message_words(rest)
            if kind == "cancel":
                parts["fields"] = {}
            return Event(kind, logs=tuple(logs), **parts)
        return Event(kind, code=int(rest[1]) if kind == "idle" else 0, logs=tuple(logs))

    def message(self, words: list[str]) -> Message:
        """A message in flight, from a ``P`` line's words (after the ``P``)."""
        parts = self.message_words(words[1:])
        return Message(parts["region"], parts["device"], parts["pin"],
                       parts["destinations"], parts["fields"], parts["index"], words[0] == "1")

    def events(self, lines: list[str]) -> tuple[list[Event], int]:
        """The events of a reply's lines, and how many were dropped before them."""
        events: list[Event] = []
        dropped = 0
        pending: list[str] | None = None
        logs: list[str] = []
        for line in lines:
            tag, _, text = line.partition(" ")
            if tag == "L":
                logs.append(text)
                continue
            if pending is not None:
                events.append(self.event(pending, logs))
                pending, logs = None, []
            if tag == "E":
                pending = text.split()
            elif tag == "D":
                dropped = int(text)
        return events, dropped
