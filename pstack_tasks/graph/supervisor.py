"""Graph-schema v4 supervisors (graph-schema.md s7): the SupervisorType and the devices' supervisor pins.

A v4 device type may declare a ``SupervisorOutPin`` (its sends go to the supervisor) and a
``SupervisorInPin`` (the supervisor's replies and broadcasts arrive there); no edge names them:
every device is connected to the supervisor both ways.  In the model they are ordinary pins named
:data:`SUPERVISOR_PIN` with ``supervisor=True``, placed last (so the out pin's RTS bit is the last
one, ``RTS_SUPER_IMPLICIT_SEND_FLAG``).  The ``SupervisorType`` is raw C++ (``Code``,
``Properties``, ``State``, handlers), kept as code for the engine template.
"""
from __future__ import annotations

from lxml import etree

from pstack_tasks.graph.elements import line_of, local
from pstack_tasks.graph.model import SUPERVISOR_PIN, Code, InputPin, MessageType, OutputPin, Struct, SupervisorType
from pstack_tasks.graph.walker import DeviceParts, GraphTypeWalker

#: the children of a SupervisorType, each at most once (SupervisorInPin is read apart)
SUPERVISOR_CODE = ("Code", "Properties", "State", "OnInit", "OnSupervisorIdle", "OnStop")


def _message_type(walker: GraphTypeWalker, c: etree._Element, known: set[str], what: str) -> str:
    mtype = c.get("messageTypeId")
    if mtype is None:
        raise walker.error(f"{what} has no messageTypeId", c)
    if mtype not in known:
        raise walker.error(f"{what} uses unknown message type {mtype!r}", c)
    return mtype


def device_supervisor_pin(walker: GraphTypeWalker, c: etree._Element, dev: DeviceParts) -> None:
    """A device type's ``SupervisorOutPin`` (OnSend) or ``SupervisorInPin`` (OnReceive), at most one each."""
    tag = local(c)
    what = f"<{tag}> of device type {dev.id!r}"
    if (dev.supervisor_out if tag == "SupervisorOutPin" else dev.supervisor_in) is not None:
        raise walker.error(f"device type {dev.id!r} has more than one <{tag}>", c)
    mtype = _message_type(walker, c, dev.known_messages, what)
    if tag == "SupervisorOutPin":
        found = walker.parts(c, ("OnSend",), what)
        on_send = walker.code(found.get("OnSend"), "OnSend of the SupervisorOutPin")
        dev.supervisor_out = OutputPin(SUPERVISOR_PIN, mtype, on_send, line=line_of(c), supervisor=True)
    else:
        found = walker.parts(c, ("OnReceive",), what)
        on_receive = walker.code(found.get("OnReceive"), "OnReceive of the SupervisorInPin")
        dev.supervisor_in = InputPin(SUPERVISOR_PIN, mtype, on_receive, Struct(), Struct(), line_of(c), supervisor=True)


def supervisor_type(walker: GraphTypeWalker, d: etree._Element, message_types: list[MessageType]) -> SupervisorType:
    """The one ``<SupervisorType>``: its code pieces and its one ``SupervisorInPin``."""
    sid = d.get("id") or ""
    if sid:
        walker.ident(d)
    known = {m.id for m in message_types}
    pieces: dict[str, Code] = {}
    pin: etree._Element | None = None
    for c in walker.elements(d, "<SupervisorType>"):
        tag = local(c)
        if tag == "SupervisorInPin" and pin is None:
            pin = c
        elif tag in SUPERVISOR_CODE and tag not in pieces:
            pieces[tag] = walker.code(c, f"{tag} of the supervisor")
        elif tag in ("SupervisorInPin", *SUPERVISOR_CODE):
            raise walker.error(f"<SupervisorType> has more than one <{tag}>", c)
        else:
            raise walker.error(f"unexpected <{tag}> in <SupervisorType> (it has {', '.join(SUPERVISOR_CODE)} "
                               "and one SupervisorInPin)", c)
    if pin is None:
        raise walker.error("<SupervisorType> has no <SupervisorInPin> (graph-schema v4 needs exactly one)", d)
    mtype = _message_type(walker, pin, known, "the supervisor's <SupervisorInPin>")
    found = walker.parts(pin, ("OnReceive",), "the supervisor's <SupervisorInPin>")
    return SupervisorType(
        sid, mtype, walker.code(found.get("OnReceive"), "OnReceive of the supervisor"),
        pieces.get("Code") or walker.code(None, "Code of the supervisor"),
        pieces.get("Properties") or walker.code(None, "Properties of the supervisor"),
        pieces.get("State") or walker.code(None, "State of the supervisor"),
        pieces.get("OnInit"), pieces.get("OnSupervisorIdle"), pieces.get("OnStop"),
        pin.get("id") or "", line_of(d))
