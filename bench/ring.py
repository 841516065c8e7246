#!/usr/bin/env python3
"""Generate a multi-token ring oscillator in graph-schema v2 XML.

Every one of the N nodes starts with one token; a node holding tokens sends
one along ``out`` to its successor, and every received token is passed on
until the receiving node has seen M of them.  Each node therefore sends and
receives exactly M messages: the run ends by quiescence with
``Delivered messages == N*M`` and every final state ``counter == M``,
``pending == 0``.  With N tokens circulating at once, many messages are in
flight and hops between regions can be batched.

    python bench/ring.py N M > ring.xml
"""
from __future__ import annotations

import sys
from typing import IO

NS = "https://poets-project.org/schemas/virtual-graph-schema-v2"

HEADER = f"""<?xml version="1.0"?>
<Graphs xmlns="{NS}">
  <GraphType id="ring">
    <Documentation>Multi-token ring oscillator (pstack-celery benchmark)</Documentation>
    <Properties/>
    <MessageTypes>
      <MessageType id="__init__">
        <Documentation>Initialize state</Documentation>
      </MessageType>
      <MessageType id="token">
        <Message>
          <Scalar type="uint32_t" name="src"/>
        </Message>
      </MessageType>
    </MessageTypes>
    <DeviceTypes>
      <DeviceType id="node">
        <Properties>
          <Scalar type="uint32_t" name="id"/>
          <Scalar type="uint32_t" name="limit"/>
        </Properties>
        <State>
          <Scalar type="uint32_t" name="counter"/>
          <Scalar type="uint32_t" name="pending"/>
        </State>
        <ReadyToSend><![CDATA[
*readyToSend = deviceState->pending > 0 ? RTS_FLAG_out : 0;
        ]]></ReadyToSend>
        <InputPin name="__init__" messageTypeId="__init__">
          <OnReceive><![CDATA[
deviceState->counter = 0;
deviceState->pending = 1;
          ]]></OnReceive>
        </InputPin>
        <InputPin name="in" messageTypeId="token">
          <OnReceive><![CDATA[
deviceState->counter++;
if (deviceState->counter < deviceProperties->limit) deviceState->pending++;
          ]]></OnReceive>
        </InputPin>
        <OutputPin name="out" messageTypeId="token">
          <OnSend><![CDATA[
deviceState->pending--;
message->src = deviceProperties->id;
          ]]></OnSend>
        </OutputPin>
      </DeviceType>
    </DeviceTypes>
  </GraphType>
  <GraphInstance id="ring_inst" graphTypeId="ring">
    <DeviceInstances>
"""

MIDDLE = """    </DeviceInstances>
    <EdgeInstances>
"""

FOOTER = """    </EdgeInstances>
  </GraphInstance>
</Graphs>
"""

CHUNK = 65536


def write_ring(n: int, m: int, fileobj: IO[str]) -> None:
    """Stream the ring (N nodes, limit M) to a text file object."""
    if n < 1:
        raise ValueError("n must be >= 1")
    if not 0 <= m <= 0xFFFFFFFF:
        raise ValueError("m must fit in uint32_t")
    w = fileobj.write
    w(HEADER)
    dev = '      <DevI id="n%d" type="node"><P>"id": %d, "limit": ' + str(m) + "</P></DevI>\n"
    for lo in range(0, n, CHUNK):
        w("".join([dev % (i, i) for i in range(lo, min(lo + CHUNK, n))]))
    w(MIDDLE)
    edge = '      <EdgeI path="n%d:in-n%d:out"/>\n'
    for lo in range(0, n, CHUNK):
        hi = min(lo + CHUNK, n)
        w("".join([edge % (i + 1, i) for i in range(lo, min(hi, n - 1))]))
    w(edge % (0, n - 1))
    w(FOOTER)


def generate_ring(n: int, m: int) -> str:
    """The ring as one string (use write_ring for large N)."""
    import io
    buf = io.StringIO()
    write_ring(n, m, buf)
    return buf.getvalue()


def ring_rmap(n: int, regions: int) -> dict[str, int]:
    """Region map putting node i in region i % regions (every hop crosses a region when regions > 1)."""
    return {f"n{i}": i % regions for i in range(n)}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: ring.py N M > file.xml", file=sys.stderr)
        return 2
    write_ring(int(argv[0]), int(argv[1]), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
