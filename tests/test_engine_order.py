"""The single-region engine's hot loop against the scheduling docs/psim.md describes ("Scheduling
and message order"), step by step: a Python model of that order runs beside the engine on a graph
whose final states depend on the order of every delivery, with the cases the loop specialises
(docs/psim.md, "What the engine's loop does per message"): slots of one local edge delivered without
their edge (flat), a device sending to itself over such a slot and in the middle of a slot of
several edges, a slot with no edge, cancelled sends and idle turns (sent and delivered are derived
from the turns, not counted per message), and a step limit that stops in the middle of all that."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pstack_tasks import psim
from pstack_tasks.exceptions import SimulationFailed
from pstack_tasks.native.codegen import out_only_inputs
from pstack_tasks.native.prepare import prepare
from support.apps import V2, graph_instance, line_of

MASK = 0xFFFFFFFF

#: device -> its one output pin's destinations, in EdgeI order
EDGES = {"a": ["a"], "b": ["c", "b", "d"], "c": ["d"], "d": ["b"], "e": [], "f": ["e", "a"], "g": ["h"], "h": []}
SENDS = {"a": 3, "b": 2, "c": 1, "d": 0, "e": 4, "f": 2, "g": 2, "h": 0}
LIMIT = 40  # receptions after which a device stops passing tokens on


def app_xml(rts: str = "", receive: str = "", send: str = "") -> str:
    """The graph of EDGES; `rts`, `receive` and `send`: code put first in those handlers."""
    ids = list(EDGES)
    devices = "\n".join(f'<DevI id="{d}" type="node"><P>"id": {i}, "sends": {SENDS[d]}</P></DevI>'
                        for i, d in enumerate(ids))
    edges = "\n".join(f'<EdgeI path="{dst}:in-{src}:out"/>' for src, dsts in EDGES.items() for dst in dsts)
    return f"""<?xml version="1.0"?>
<Graphs xmlns="{V2}">
  <GraphType id="order">
    <Properties/>
    <MessageTypes>
      <MessageType id="__init__"/>
      <MessageType id="token"><Message><Scalar type="uint32_t" name="src"/></Message></MessageType>
    </MessageTypes>
    <DeviceTypes>
      <DeviceType id="node">
        <Properties><Scalar name="id" type="uint32_t"/><Scalar name="sends" type="uint32_t"/></Properties>
        <State><Scalar name="left" type="uint32_t"/><Scalar name="got" type="uint32_t"/>
               <Scalar name="tries" type="uint32_t"/><Scalar name="h" type="uint32_t"/></State>
        <ReadyToSend><![CDATA[ {rts}
          *readyToSend = deviceState->left > 0 ? RTS_FLAG_out : 0; ]]></ReadyToSend>
        <InputPin messageTypeId="__init__" name="__init__"><OnReceive><![CDATA[
          deviceState->left = deviceProperties->sends;
        ]]></OnReceive></InputPin>
        <InputPin messageTypeId="token" name="in"><OnReceive><![CDATA[ {receive}
          deviceState->h = deviceState->h * 31u + message->src + 1u;
          deviceState->got++;
          if (deviceState->got < {LIMIT} && deviceState->got % 3 != 0) deviceState->left++;
        ]]></OnReceive></InputPin>
        <OutputPin messageTypeId="token" name="out"><OnSend><![CDATA[ {send}
          if (++deviceState->tries % 4 == 0) {{ *doSend = false; return; }}
          deviceState->left--;
          message->src = deviceProperties->id * 7u + deviceState->tries;
        ]]></OnSend></OutputPin>
      </DeviceType>
    </DeviceTypes>
  </GraphType>
""" + graph_instance("order", devices, edges)


@dataclass
class Node:
    id: int
    left: int
    got: int = 0
    tries: int = 0
    h: int = 0
    queued: bool = field(default=False)


def model(max_steps: int = 0) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """The documented order: a FIFO of devices whose ready-to-send may have changed; a popped ready
    device sends once; the message goes to each edge in EdgeI order, each destination joining the
    FIFO; the sender joins again if still ready (a cancelled send: at once).  A step is a send or a
    cancelled send; with max_steps the run stops right after that many."""
    nodes = {d: Node(i, SENDS[d]) for i, d in enumerate(EDGES)}
    fifo: deque[str] = deque()
    counts = {"sent": 0, "cancelled": 0, "delivered": 0}

    def push(d: str) -> None:
        if not nodes[d].queued:
            nodes[d].queued = True
            fifo.append(d)

    for d in EDGES:
        if nodes[d].left > 0:
            push(d)
    while fifo and not (max_steps and counts["sent"] + counts["cancelled"] >= max_steps):
        d = fifo.popleft()
        n = nodes[d]
        n.queued = False
        if n.left == 0:
            continue
        n.tries += 1
        if n.tries % 4 == 0:
            counts["cancelled"] += 1
            push(d)
            continue
        n.left -= 1
        src = (n.id * 7 + n.tries) & MASK
        counts["sent"] += 1
        for dst in EDGES[d]:
            m = nodes[dst]
            m.h = (m.h * 31 + src + 1) & MASK
            m.got += 1
            if m.got < LIMIT and m.got % 3 != 0:
                m.left += 1
            counts["delivered"] += 1
            push(dst)
        if n.left > 0:
            push(d)
    states = {d: {"left": n.left, "got": n.got, "tries": n.tries, "h": n.h} for d, n in nodes.items()}
    return states, counts


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("order") / "order.xml"
    path.write_text(app_xml())
    return path


def test_the_graph_has_flat_slots_and_the_others(app: Path) -> None:
    """The cases below are really exercised: the output pin's messages go to one input pin without
    edge data (so its slots of one edge are flat), and the instance has slots of 0, 1 and 3 edges."""
    gt = prepare(app).app.graph_type
    assert out_only_inputs(gt) == [1]  # node's out -> node's in (index 1 over all input pins)
    assert {len(v) for v in EDGES.values()} == {0, 1, 2, 3}


def test_every_delivery_in_the_documented_order(app: Path) -> None:
    states, counts = model()
    result = psim(app, options={"quiet": True})
    m = result["metrics"]
    assert result["states"] == states
    assert (m["Sent messages"], m["Cancelled sends"], m["Delivered messages"]) == (
        counts["sent"], counts["cancelled"], counts["delivered"])
    assert counts["cancelled"] > 0 and counts["sent"] > 50  # the run is long enough to mean something


@pytest.mark.parametrize("steps", [1, 7, 23, 60])
def test_a_step_limit_in_the_middle_of_it(app: Path, steps: int) -> None:
    states, counts = model(max_steps=steps)
    result = psim(app, options={"quiet": True, "max_steps": steps})
    m = result["metrics"]
    assert m["Exit reason"] == "max-steps"
    assert m["Sent messages"] + m["Cancelled sends"] == steps
    assert result["states"] == states
    assert (m["Sent messages"], m["Cancelled sends"], m["Delivered messages"]) == (
        counts["sent"], counts["cancelled"], counts["delivered"])


NODE = "(device type 'node')"


@pytest.mark.parametrize("where, code, device, handler", [
    # h receives only over g's slot of one edge (flat): named from that slot's edge
    ("receive", "assert(deviceProperties->id != 7);", "h", f"OnReceive of pin 'in' {NODE}"),
    # c receives only over b's slot of three edges
    ("receive", "assert(deviceProperties->id != 2);", "c", f"OnReceive of pin 'in' {NODE}"),
    ("send", "assert(!(deviceProperties->id == 4 && deviceState->tries == 2));", "e", f"OnSend of pin 'out' {NODE}"),
    ("rts", "assert(!(deviceProperties->id == 1 && deviceState->got == 5));", "b", f"ReadyToSend {NODE}"),
])
def test_a_failed_assert_names_the_device_and_handler(tmp_path: Path, where: str, code: str, device: str,
                                                      handler: str) -> None:
    app = tmp_path / "order.xml"
    app.write_text(app_xml(**{where: code}))
    with pytest.raises(SimulationFailed) as e:
        psim(app, options={"quiet": True})
    expr, line = code[len("assert("):-len(");")], line_of(app, code)
    assert str(e.value) == f"assertion failed in device '{device}', handler {handler} ({app}:{line}): {expr}"


def test_a_log_line_names_the_receiving_device(tmp_path: Path) -> None:
    app = tmp_path / "order.xml"
    app.write_text(app_xml(receive='if (deviceProperties->id == 7) handler_log(1, "got %u", deviceState->got);'))
    lines: list[str] = []
    psim(app, options={"log": lines.append})
    assert lines == ["Log [device h, level 1]: got 0", "Log [device h, level 1]: got 1"]
