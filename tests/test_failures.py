"""Bad input and failing handlers: one clear error naming the problem, and nothing left running."""
from __future__ import annotations

from pathlib import Path

import pytest

from pstack_tasks import BuildError, ConfigurationError, GraphError, SimulationFailed, psim
from support.apps import RECEIVE, crashing_app, line_of, token_ring, variant
from support.paths import KEY_PREFIX


def test_compile_error_names_device_type_handler_and_line(tmp_path: Path) -> None:
    app = variant("basic-01.xml", RECEIVE, RECEIVE.replace("deviceState->counter++;",
                  "deviceState->counter++;\n                        undefined_thing = 3;"), tmp_path)
    with pytest.raises(BuildError) as e:
        psim(app, options={"quiet": True})
    line = line_of(app, "undefined_thing")
    assert str(e.value).startswith(f"{app}:{line}: compile error in device type 'device', "
                                   "OnReceive of pin 'input', line 2: ")
    assert "undefined_thing" in str(e.value)


def test_a_stray_brace_in_a_handler_is_named_not_blamed_on_generated_code(tmp_path: Path) -> None:
    # found by the fuzz test: a "}" ends the handler early, so the compiler's errors land in the
    # generated code after it; the error must still name the handler and the line of the brace
    app = variant("basic-01.xml", RECEIVE, RECEIVE.replace("deviceState->counter++;",
                  "deviceState->counter++; }"), tmp_path)
    with pytest.raises(BuildError) as e:
        psim(app, options={"quiet": True})
    line = line_of(app, "deviceState->counter++; }")
    assert str(e.value).startswith(f"{app}:{line}: compile error in device type 'device', OnReceive of pin "
                                   f"'input', line ")
    assert "'}' without a matching '{'" in str(e.value) and "generated code" not in str(e.value)


def test_junk_at_the_end_of_a_handler_is_named_not_blamed_on_generated_code(tmp_path: Path) -> None:
    # found by the fuzz test (seed 4232982271): a handler's code ending in an operator makes the
    # compiler stop at the first generated token after it; the error names the handler's last line
    end = "handler_exit(0); // exit successfully\n"
    app = variant("basic-01.xml", end, end + "   !   \n", tmp_path)
    with pytest.raises(BuildError) as e:
        psim(app, options={"quiet": True})
    assert str(e.value).startswith(f"{app}:{line_of(app, '   !   ')}:")
    assert "compile error in device type 'device', OnReceive of pin 'input', at the end of its code" in str(e.value)
    assert "generated code" not in str(e.value)


def test_compile_error_in_shared_code(tmp_path: Path) -> None:
    app = variant("ring-oscillator-01.xml", "struct toggle_msg {", "struct toggle_msg { nonsense_t x;", tmp_path)
    with pytest.raises(BuildError) as e:
        psim(app)
    assert f"{app}:{line_of(app, 'nonsense_t')}: compile error in graph SharedCode, line " in str(e.value)


def test_compile_error_in_ready_to_send(tmp_path: Path) -> None:
    app = variant("basic-02.xml", "rts = deviceState->rts;", "rts = deviceState->no_such_field;", tmp_path)
    with pytest.raises(BuildError) as e:
        psim(app)
    assert "device type 'device_type_x', ReadyToSend, line 1" in str(e.value)
    assert "no_such_field" in str(e.value)




def test_segfault_names_device_and_handler(tmp_path: Path, no_leftovers: None) -> None:
    with pytest.raises(SimulationFailed) as e:
        psim(crashing_app(tmp_path), options={"quiet": True})
    assert str(e.value) == ("handler OnReceive of pin 'input' (device type 'device') of device 'device1' "
                            "crashed: segmentation fault")


def test_segfault_in_one_region_fails_the_split_and_stops_the_others(tmp_path: Path, redis_url: str,
                                                                    no_leftovers: None) -> None:
    with pytest.raises(SimulationFailed) as e:
        psim(crashing_app(tmp_path), rmap={"device1": 1},
             options={"quiet": True, "redis_url": redis_url, "prefix": KEY_PREFIX})
    assert str(e.value).startswith("region 1: handler OnReceive of pin 'input'")
    assert "device 'device1' crashed: segmentation fault" in str(e.value)


def test_failed_assert_names_device_handler_and_assertion(tmp_path: Path) -> None:
    app = variant("basic-01.xml", RECEIVE, RECEIVE.replace(
        "deviceState->counter++;", "deviceState->counter++;\n assert(deviceState->counter < 7);"), tmp_path)
    with pytest.raises(SimulationFailed) as e:
        psim(app, options={"quiet": True})
    line = line_of(app, "assert(deviceState->counter < 7)")
    assert str(e.value) == (f"assertion failed in device 'device1', handler OnReceive of pin 'input' "
                            f"(device type 'device') ({app}:{line}): deviceState->counter < 7")


def test_handler_exit_from_shared_code_ends_the_run(tmp_path: Path) -> None:
    # pstack's v2 liberty: shared code may call handler_exit (the ring's send_toggle does)
    app = variant("ring-oscillator-01.xml", "#define SOFTWARE_BUFF_SIZE 1024", "#define SOFTWARE_BUFF_SIZE 0",
                  tmp_path)
    result = psim(app, options={"quiet": True})
    assert result["metrics"]["Exit code"] == 1
    assert result["metrics"]["Exit reason"] == "handler_exit"


def test_exit_marker_strings_mean_application_exit(tmp_path: Path) -> None:
    app = tmp_path / "marker.xml"
    app.write_text(token_ring(4, 1000, on_receive_extra=
                   'if (deviceState->counter == 3) handler_log(0, "_HANDLER_EXIT_FAIL_9be65737_");'))
    result = psim(app, options={"quiet": True})
    assert result["metrics"]["Exit code"] == 1
    assert result["metrics"]["Exit reason"] == "handler_exit"
    assert result["metrics"]["Delivered messages"] < 4 * 1000


def test_max_steps_and_time_limit_stop_endless_runs(tmp_path: Path) -> None:
    app = tmp_path / "endless.xml"
    app.write_text(token_ring(4, 0xFFFFFFFF))  # limit never reached: runs for ever
    result = psim(app, options={"quiet": True, "max_steps": 100000})
    assert result["metrics"]["Exit reason"] == "max-steps"
    assert 100000 <= result["metrics"]["Sent messages"] < 100000 + 2048
    result = psim(app, options={"quiet": True, "time_limit": 0.3})
    assert result["metrics"]["Exit reason"] == "time-limit"
    assert 0.3 <= result["metrics"]["Run seconds"] < 5


def test_ready_to_send_bit_without_a_pin(tmp_path: Path) -> None:
    app = variant("basic-01.xml", "rts = (deviceProperties->id == 0 && deviceState->counter < 10) ? 1 : 0;",
                  "rts = 4;", tmp_path)
    with pytest.raises(SimulationFailed) as e:
        psim(app)
    assert ("handler ReadyToSend (device type 'device') of device 'device0' set bit 2, "
            "but the type has 1 output pins") in str(e.value)


def test_region_map_errors(tmp_path: Path) -> None:
    app = Path(__file__).parent / "data" / "pstack" / "basic-01.xml"
    with pytest.raises(GraphError, match=f"{app}: region map names device 'nope'"):
        psim(app, rmap={"nope": 1})
    with pytest.raises(GraphError, match="regions are integers >= 0"):
        psim(app, rmap={"device1": -1})


def test_unknown_option_is_named() -> None:
    app = Path(__file__).parent / "data" / "pstack" / "basic-01.xml"
    with pytest.raises(ConfigurationError, match="unknown option.*levle"):
        psim(app, options={"levle": 2})


def test_unreachable_redis_is_reported(tmp_path: Path) -> None:
    from pstack_tasks import RedisUnavailable
    from pstack_tasks.native.redis_server import free_port
    app = Path(__file__).parent / "data" / "pstack" / "basic-01.xml"
    url = f"redis://127.0.0.1:{free_port()}/0"
    with pytest.raises(RedisUnavailable, match=f"cannot reach Redis at {url}"):
        psim(app, rmap={"device1": 1}, options={"redis_url": url})


def test_limits_stop_every_region_of_a_split(tmp_path: Path, redis_url: str, no_leftovers: None) -> None:
    app = tmp_path / "endless.xml"
    app.write_text(token_ring(6, 0xFFFFFFFF))
    rmap = {f"n{i}": i % 2 for i in range(6)}
    opts = {"quiet": True, "redis_url": redis_url, "prefix": KEY_PREFIX}
    result = psim(app, rmap=rmap, options={**opts, "max_steps": 5000})
    assert result["metrics"]["Exit reason"] == "max-steps"
    assert {m["Exit reason"] for m in result["regions"].values()} <= {"max-steps", "remote stop"}
    result = psim(app, rmap=rmap, options={**opts, "time_limit": 0.5})
    assert result["metrics"]["Exit reason"] == "time-limit"


def test_max_steps_is_exact(tmp_path: Path) -> None:
    app = tmp_path / "endless.xml"
    app.write_text(token_ring(4, 0xFFFFFFFF))
    assert psim(app, options={"quiet": True, "max_steps": 5})["metrics"]["Sent messages"] == 5


@pytest.mark.parametrize("steps", [1023, 1024, 1025, 3 * 1024 + 7])
def test_max_steps_is_exact_across_poll_intervals(tmp_path: Path, steps: int) -> None:
    # The loop checks its limits once per countdown of turns (1024 between polls): the stop must
    # still come right after the N-th send, on either side of a poll.
    app = tmp_path / "endless.xml"
    app.write_text(token_ring(4, 0xFFFFFFFF))
    m = psim(app, options={"quiet": True, "max_steps": steps})["metrics"]
    assert (m["Exit reason"], m["Sent messages"], m["Delivered messages"]) == ("max-steps", steps, steps)


def test_assert_survives_an_include_of_assert_h(tmp_path: Path) -> None:
    blank, include = "<![CDATA[\n            ]]>", "<![CDATA[\n#include <assert.h>\n            ]]>"
    app = variant("basic-01.xml", blank, include, tmp_path)
    log = "\n                        handler_log(1, \"Received"
    checked = "deviceState->counter++; assert(deviceState->counter < 3);"
    app.write_text(app.read_text().replace("deviceState->counter++;" + log, checked + log, 1))
    with pytest.raises(SimulationFailed, match=r"assertion failed in device 'device1'.*: deviceState->counter < 3"):
        psim(app, options={"quiet": True})


def test_v2_refuses_v3_handlers(tmp_path: Path) -> None:
    app = variant("basic-01.xml", "<ReadyToSend>", "<OnInit><![CDATA[ ]]></OnInit><ReadyToSend>", tmp_path)
    with pytest.raises(GraphError, match="<OnInit> is graph-schema v3"):
        psim(app)


def test_graph_type_id_equal_to_a_device_type_id_is_refused(tmp_path: Path) -> None:
    app = variant("basic-01.xml", '<GraphType id="test">', '<GraphType id="device">', tmp_path)
    app.write_text(app.read_text().replace('graphTypeId="test"', 'graphTypeId="device"'))
    with pytest.raises(GraphError, match="device type id 'device' is also the graph type id"):
        psim(app)
