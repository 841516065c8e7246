"""Small application files made on the fly from pstack's test apps (for error and feature tests)."""
from __future__ import annotations

from pathlib import Path

from support.paths import DATA, PSTACK

V2 = "https://poets-project.org/schemas/virtual-graph-schema-v2"


def graph_instance(graph_type: str, devices: str, edges: str) -> str:
    """The ``<GraphInstance>`` section and the document's end: what follows a ``</GraphType>`` in
    the applications these helpers (and tests) write, given their DevI and EdgeI lines."""
    return f"""  <GraphInstance id="g" graphTypeId="{graph_type}">
    <DeviceInstances>
{devices}
    </DeviceInstances>
    <EdgeInstances>
{edges}
    </EdgeInstances>
  </GraphInstance>
</Graphs>
"""


def variant(name: str, old: str, new: str, tmp: Path, out: str = "app.xml", folder: Path = PSTACK) -> Path:
    """A copy of a test app (default: pstack's) with one piece of text replaced (which must be present)."""
    text = (folder / name).read_text()
    assert old in text, f"{old!r} not in {name}"
    path = tmp / out
    path.write_text(text.replace(old, new, 1))
    return path


def line_of(path: Path, needle: str) -> int:
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(f"{needle!r} not in {path}")


def token_ring(n: int, limit: int, extra_state: str = "", on_receive_extra: str = "") -> str:
    """A multi-token ring without handler_exit: it ends by quiescence with n*limit deliveries."""
    devices = "\n".join(f'<DevI id="n{i}" type="node"><P>"id": {i}, "limit": {limit}</P></DevI>' for i in range(n))
    edges = "\n".join(f'<EdgeI path="n{(i + 1) % n}:in-n{i}:out"/>' for i in range(n))
    return f"""<?xml version="1.0"?>
<Graphs xmlns="{V2}">
  <GraphType id="tokens">
    <Properties/>
    <MessageTypes>
      <MessageType id="__init__"/>
      <MessageType id="token"><Message><Scalar type="uint32_t" name="src"/><Scalar type="double" name="x"/></Message>
      </MessageType>
    </MessageTypes>
    <DeviceTypes>
      <DeviceType id="node">
        <Properties><Scalar name="id" type="uint32_t"/><Scalar name="limit" type="uint32_t"/></Properties>
        <State><Scalar name="counter" type="uint32_t"/><Scalar name="pending" type="uint32_t"/>
               <Scalar name="sum" type="double"/>{extra_state}</State>
        <ReadyToSend><![CDATA[ *readyToSend = deviceState->pending > 0 ? RTS_FLAG_out : 0; ]]></ReadyToSend>
        <InputPin messageTypeId="__init__" name="__init__"><OnReceive><![CDATA[
          deviceState->counter = 0; deviceState->pending = 1; deviceState->sum = 0;
        ]]></OnReceive></InputPin>
        <InputPin messageTypeId="token" name="in"><OnReceive><![CDATA[
          deviceState->counter++;
          deviceState->sum += message->x;
          if (deviceState->counter < deviceProperties->limit) deviceState->pending++;
          {on_receive_extra}
        ]]></OnReceive></InputPin>
        <OutputPin messageTypeId="token" name="out"><OnSend><![CDATA[
          deviceState->pending--;
          message->src = deviceProperties->id;
          message->x = 1.0 / (3.0 + deviceProperties->id);
        ]]></OnSend></OutputPin>
      </DeviceType>
    </DeviceTypes>
  </GraphType>
""" + graph_instance("tokens", devices, edges)


V3_DATA = DATA / "v3"


def v3_variant(name: str, old: str, new: str, tmp: Path, out: str = "app.xml") -> Path:
    """A copy of a tests/data/v3 file with one piece of text replaced (which must be present)."""
    return variant(name, old, new, tmp, out, V3_DATA)


def split(names: list[str], regions: int) -> dict[str, int]:
    """Device i in region i % regions: every edge between neighbours crosses regions."""
    return {n: i % regions for i, n in enumerate(names)}


#: pstack's basic-01 receive handler, as the variants below change it
RECEIVE = 'deviceState->counter++;\n                        handler_log(1, "Received message %d"'


def crashing_app(tmp_path: Path) -> Path:
    """basic-01 with a handler that dereferences NULL on the fifth message (a segfault in a handler)."""
    return variant("basic-01.xml", RECEIVE, RECEIVE.replace(
        "deviceState->counter++;",
        "deviceState->counter++;\n if (deviceState->counter == 5) { volatile int* p = 0; *p = 1; }"), tmp_path)


V4_NS = "https://poets-project.org/schemas/virtual-graph-schema-v4"


def supervised_ring(n: int, limit: int, every: int = 100, bcast_every: int = 50, on_receive_extra: str = "") -> str:
    """A v4 multi-token ring with a supervisor: every ``every`` receptions a device reports to the
    supervisor (SupervisorOutPin), which counts reports in its state, replies ``2 * id + 1`` and,
    every ``bcast_every`` reports, broadcasts.  Deterministic final states (sums and counts) whose
    broadcast counts depend on the supervisor's state: a supervisor that lost its count would differ."""
    devices = "\n".join(f'<DevI id="n{i}" type="node" P="{{{i}, {limit}}}"/>' for i in range(n))
    edges = "\n".join(f'<EdgeI path="n{(i + 1) % n}:in-n{i}:out"/>' for i in range(n))
    return f"""<?xml version="1.0"?>
<Graphs xmlns="{V4_NS}" appname="supervised_ring">
  <GraphType id="supervised_ring">
    <MessageTypes>
      <MessageType id="token"><Message><![CDATA[ uint32_t src; ]]></Message></MessageType>
      <MessageType id="rep"><Message><![CDATA[ uint32_t v; ]]></Message></MessageType>
    </MessageTypes>
    <DeviceTypes>
      <DeviceType id="node">
        <Properties><![CDATA[ uint32_t id; uint32_t limit; ]]></Properties>
        <State><![CDATA[ uint32_t counter; uint32_t pending; uint32_t report; uint64_t got; uint32_t bcasts; ]]></State>
        <InputPin name="in" messageTypeId="token"><OnReceive><![CDATA[
          deviceState->counter++;
          if (deviceState->counter < deviceProperties->limit) deviceState->pending++;
          if (deviceState->counter % {every} == 0) deviceState->report++;
          {on_receive_extra}
        ]]></OnReceive></InputPin>
        <OutputPin name="out" messageTypeId="token"><OnSend><![CDATA[
          deviceState->pending--;
          message->src = deviceProperties->id;
        ]]></OnSend></OutputPin>
        <SupervisorOutPin messageTypeId="rep"><OnSend><![CDATA[
          deviceState->report--;
          message->v = deviceProperties->id;
        ]]></OnSend></SupervisorOutPin>
        <SupervisorInPin messageTypeId="rep"><OnReceive><![CDATA[
          if (message->v >= 1000000) deviceState->bcasts++; else deviceState->got += message->v;
        ]]></OnReceive></SupervisorInPin>
        <ReadyToSend><![CDATA[
          if (deviceState->pending) *readyToSend |= RTS_FLAG_out;
          if (deviceState->report) RTSSUP();
        ]]></ReadyToSend>
        <OnInit><![CDATA[ deviceState->pending = 1; ]]></OnInit>
      </DeviceType>
      <SupervisorType id="boss">
        <State><![CDATA[ uint64_t seen; ]]></State>
        <SupervisorInPin id="in" messageTypeId="rep"><OnReceive><![CDATA[
          SUPSTATE(seen) += 1;
          RTSREPLY(); reply->v = 2 * message->v + 1;
          if (SUPSTATE(seen) % {bcast_every} == 0) {{ RTSBCAST(); bcast->v = 1000000; }}
        ]]></OnReceive></SupervisorInPin>
      </SupervisorType>
    </DeviceTypes>
  </GraphType>
""" + graph_instance("supervised_ring", devices, edges)
