"""The single-region engine loop's specialisations (docs/psim.md, "What the engine's loop does per
message"): stop tests only where a handler can stop the run, and v2 `__init__` pins reached over an
edge handled out of line; neither may change what a run gives."""
from __future__ import annotations

from pathlib import Path

import pytest

from pstack_tasks import psim
from pstack_tasks.native.codegen import handlers_may_stop, render
from pstack_tasks.native.prepare import prepare
from support.apps import token_ring

V2 = "https://poets-project.org/schemas/virtual-graph-schema-v2"


def fan_out(on_receive: str) -> str:
    """Device a sends three times over three edges: into b's __init__ pin, b's in and c's in (all
    carry the message type __init__, so that an edge may go into an __init__ pin)."""
    return f"""<?xml version="1.0"?>
<Graphs xmlns="{V2}">
  <GraphType id="fan">
    <Properties/>
    <MessageTypes><MessageType id="__init__"/></MessageTypes>
    <DeviceTypes>
      <DeviceType id="node">
        <Properties><Scalar name="sends" type="uint32_t"/></Properties>
        <State><Scalar name="inits" type="uint32_t"/><Scalar name="left" type="uint32_t"/>
               <Scalar name="got" type="uint32_t"/></State>
        <ReadyToSend><![CDATA[ *readyToSend = deviceState->left > 0 ? RTS_FLAG_out : 0; ]]></ReadyToSend>
        <InputPin messageTypeId="__init__" name="__init__"><OnReceive><![CDATA[
          if (++deviceState->inits == 1) deviceState->left = deviceProperties->sends;
        ]]></OnReceive></InputPin>
        <InputPin messageTypeId="__init__" name="in"><OnReceive><![CDATA[
          deviceState->got++;
          {on_receive}
        ]]></OnReceive></InputPin>
        <OutputPin messageTypeId="__init__" name="out"><OnSend><![CDATA[ deviceState->left--; ]]></OnSend></OutputPin>
      </DeviceType>
    </DeviceTypes>
  </GraphType>
  <GraphInstance id="g" graphTypeId="fan">
    <DeviceInstances>
      <DevI id="a" type="node"><P>"sends": 3</P></DevI>
      <DevI id="b" type="node"/>
      <DevI id="c" type="node"/>
    </DeviceInstances>
    <EdgeInstances>
      <EdgeI path="b:__init__-a:out"/>
      <EdgeI path="b:in-a:out"/>
      <EdgeI path="c:in-a:out"/>
    </EdgeInstances>
  </GraphInstance>
</Graphs>
"""


def graph_type(tmp_path: Path, xml: str):  # type: ignore[no-untyped-def]
    app = tmp_path / "app.xml"
    app.write_text(xml)
    return prepare(app).app.graph_type


@pytest.mark.parametrize("code, may_stop", [
    ("", False),
    ("if (deviceState->got == 2) handler_exit(3);", True),
    ('handler_log(2, "got %u", deviceState->got);', True),
    ("/* handler_exits_nothing */", False),
])
def test_the_engine_tests_for_stops_only_when_a_handler_can_stop(tmp_path: Path, code: str, may_stop: bool) -> None:
    gt = graph_type(tmp_path, fan_out(code))
    assert handlers_may_stop(gt) is may_stop
    assert f"#define PSTACK_HANDLERS_MAY_STOP {int(may_stop)}" in render(gt).text


def test_an_edge_into_an_init_pin_delivers_like_any_other(tmp_path: Path) -> None:
    app = tmp_path / "fan.xml"
    app.write_text(fan_out(""))
    result = psim(app, options={"quiet": True})
    assert result["metrics"]["Delivered messages"] == 9
    assert result["metrics"]["Exit reason"] == "quiescence"
    # b's __init__ pin ran once at start-up and once per message over its edge
    assert result["states"] == {"a": {"inits": 1, "left": 0, "got": 0}, "b": {"inits": 4, "left": 0, "got": 3},
                                "c": {"inits": 1, "left": 0, "got": 3}}


def test_handler_exit_still_ends_the_run_at_once(tmp_path: Path) -> None:
    app = tmp_path / "fan.xml"
    app.write_text(fan_out("if (deviceState->got == 2) handler_exit(3);"))
    result = psim(app, options={"quiet": True})
    # the second message reaches b's __init__ and in pins, where the run ends: c never sees it
    assert result["metrics"]["Delivered messages"] == 5
    assert result["metrics"]["Exit reason"] == "handler_exit"
    assert result["metrics"]["Exit code"] == 3
    assert result["states"]["c"] == {"inits": 1, "left": 0, "got": 1}
    assert result["states"]["b"]["got"] == 2


def test_a_step_limit_stops_at_exactly_that_step(tmp_path: Path) -> None:
    app = tmp_path / "ring.xml"
    app.write_text(token_ring(4, 1000))
    result = psim(app, options={"quiet": True, "max_steps": 2049})
    assert result["metrics"]["Sent messages"] == 2049
    assert result["metrics"]["Exit reason"] == "max-steps"
