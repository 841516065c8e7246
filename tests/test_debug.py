"""The step debugger on pstack's ring oscillator (issue 13, part 3): a scripted session, the same
over a 2-region split, breakpoints on a long run, bad input, and ``pstack debug -c``.

Real debug engines throughout: the ring's graph type compiled with the debugger's main."""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from pstack_tasks import DebugError, SimulationFailed, debug, psim
from support.commands import PSTACK_CMD, pstack
from support.paths import SHARED_DATA
from support.terminal import Terminal

RING = str(SHARED_DATA / "pstack-tests" / "ring-oscillator-01.xml")
DEVICES = ("n0", "n1", "n2", "n3")


def counters(s: object) -> list[int]:
    return [s.state(d)["counter"] for d in DEVICES]  # type: ignore[attr-defined]


def scripted_session(rmap: dict[str, int] | None) -> None:
    """until n0's counter is 5 with a message in flight, look, inject one more, run to the end."""
    baseline = psim(RING, options={"quiet": True})["metrics"]
    with debug(RING, rmap=rmap) as s:
        stop = s.until(lambda s: s.state("n0")["counter"] >= 5 and s.pending())
        assert stop.why == "the predicate holds"
        # n0 took the token for the 5th time and sent it on: every other node has seen it 4 times
        assert counters(s) == [5, 4, 4, 4]
        flying = s.pending()
        assert len(flying) == 1
        assert (flying[0].source, flying[0].pin, flying[0].destinations) == ("n0", "toggle_out", ("n1",))
        assert flying[0].fields == {"src": 0, "dst": 0xFFFFFFFF}
        assert (stop[-1].kind, stop[-1].device, stop[-1].destinations) == ("send", "n0", ("n1",))
        added = s.inject("n0", "toggle_out", src=77, dst=5)
        assert added.injected and added.fields == {"src": 77, "dst": 5}
        assert [m.fields["src"] for m in s.pending()] == [0, 77]  # in delivery order
        end = s.cont()
        assert s.ended and end.why == "ended: handler_exit, exit code 0"
        assert any(e.kind == "deliver" and e.fields.get("src") == 77 for e in s.log())
        metrics = s.result()["metrics"]
        # every delivery of the uninterrupted run follows a send; here one more message was delivered than sent
        assert baseline["Delivered messages"] == baseline["Sent messages"] == 40
        assert metrics["Delivered messages"] == metrics["Sent messages"] + 1
        assert metrics["Exit code"] == 0 and metrics["Exit reason"] == "handler_exit"
        if rmap:
            assert metrics["Remote messages sent"] > 0
            assert metrics["Remote messages sent"] == metrics["Remote messages received"]


def test_scripted_session_on_the_ring() -> None:
    scripted_session(None)


def test_scripted_session_on_a_two_region_split() -> None:
    scripted_session({"n2": 1, "n3": 1})


def test_until_stops_at_the_delivery_that_makes_the_predicate_true() -> None:
    with debug(RING) as s:
        stop = s.until(lambda s: s.state("n0")["counter"] >= 5)
        assert stop[-1].kind == "deliver" and stop[-1].destinations == ("n0",)
        assert stop[-1].logs == ("Log [device n0, level 1]: counter = 5",)
        assert counters(s) == [5, 4, 4, 4]
        assert s.pending() == [] and s.ready() == {0: ["n0"]}  # the token waits in n0's buffer
        assert s.step().ran == 1 and len(s.pending()) == 1


def test_each_region_of_a_split_steps_alone() -> None:
    with debug(RING, rmap={"n2": 1, "n3": 1}) as s:
        assert s.region(1).step().ran == 0  # region 1 waits for the token
        first = s.region(0).step()
        assert [(e.kind, e.region, e.device) for e in first] == [("send", 0, "n0")]
        s.region(0).step(2)  # delivered to n1, which sends on to n2 in region 1
        [crossing] = s.pending()
        assert (crossing.region, crossing.source, crossing.destinations) == (1, "n1", ("n2",))
        assert s.region(1).pending() == [crossing] and s.region(0).pending() == []
        assert s.region(0).step().ran == 0
        got = s.region(1).step()
        assert [(e.kind, e.region, e.destinations) for e in got] == [("deliver", 1, ("n2",))]
        assert counters(s) == [1, 1, 1, 0]
        s.cont()
        assert s.result()["states"] == psim(RING, options={"quiet": True})["states"]


def long_ring(tmp_path: Path, limit: int) -> str:
    text = Path(RING).read_text().replace("deviceState->counter >= 10", f"deviceState->counter >= {limit}")
    path = tmp_path / f"ring-{limit}.xml"
    path.write_text(text)
    return str(path)


def test_break_when_stops_a_long_run_at_the_value(tmp_path: Path) -> None:
    app = long_ring(tmp_path, 20000)
    with debug(app, level=0) as s:
        number = s.break_when("n2", "counter", ">=", 12345)
        stop = s.cont()
        assert stop.why == f"breakpoint {number} (n2.counter >= 12345)"
        assert s.state("n2")["counter"] == 12345
        assert counters(s) == [12345, 12345, 12345, 12344]  # n0 counted its first token at OnInit
        assert stop.dropped > 0 and len(stop) == 1000  # a long cont keeps its last events
        s.cont()  # the breakpoint holds already: it stops again only when it becomes true again
        assert s.ended
        ref = psim(app, options={"quiet": True})
        got = s.result()
        assert got["states"] == ref["states"]
        assert got["metrics"]["Delivered messages"] == ref["metrics"]["Delivered messages"] == 80000


def test_bad_requests_are_one_line_each() -> None:
    with debug(RING) as s:
        cases = [
            (lambda: s.state("n9"), "no device 'n9' in ring-oscillator-01.xml"),
            (lambda: s.set_state("n0", nope=1), "device 'n0' (type 'node') has no state field 'nope'"),
            (lambda: s.set_state("n0", counter="x"), "expected an integer for uint32_t, got 'x'"),
            (lambda: s.set_state("n0", counter=-1), "out of range for uint32_t"),
            (lambda: s.inject("n0", "nope"), "device 'n0' (type 'node') has no output pin 'nope'"),
            (lambda: s.inject("n0", "toggle_out", bogus=1), "message type 'toggle' has no field 'bogus'"),
            (lambda: s.break_when("n0", "toggle_buffer_dst", ">=", 1), "is not a scalar"),
            (lambda: s.break_when("n0", "counter", "=>", 1), "unknown comparison '=>'"),
            (lambda: s.break_when("n0", "counter", ">=", "5"), "'5' is not a number"),
            (lambda: s.region(4), "no region 4 in this session"),
            (lambda: s.clear(3), "no breakpoint 3"),
            (lambda: s.step(0), "step: n must be 1 or more, not 0"),
        ]
        for call, text in cases:
            with pytest.raises(DebugError) as err:
                call()
            assert text in str(err.value) and "\n" not in str(err.value)
        s.set_state("n2", counter=9)
        assert s.state("n2")["counter"] == 9
        s.cont()
        for move in (s.step, s.cont, lambda: s.inject("n0", "toggle_out"), lambda: s.until(bool)):
            with pytest.raises(DebugError, match="the session has ended \\(handler_exit, exit code 0\\)"):
                move()
        s.close()
        s.close()  # again: nothing to do


def test_a_failed_assert_ends_the_session_with_the_engines_line(tmp_path: Path) -> None:
    text = Path(RING).read_text().replace("bool finished = deviceState->counter >= 10;",
                                          "assert(deviceState->counter < 3); bool finished = false;")
    app = tmp_path / "assert.xml"
    app.write_text(text)
    with debug(str(app)) as s:
        with pytest.raises(SimulationFailed) as err:
            s.cont()
        assert "assertion failed in device 'n0'" in str(err.value) and "OnReceive" in str(err.value)
        with pytest.raises(SimulationFailed):
            s.state("n0")


def test_pstack_debug_runs_code_against_the_session(tmp_path: Path) -> None:
    code = ("s.until(lambda s: s.state('n0')['counter'] >= 5 and s.pending()).why\n"
            "s.pending()\ns.cont().why\ns.result()['metrics']['Delivered messages']")
    out = pstack("debug", RING, "-c", code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "'the predicate holds'",
        "[n0:toggle_out -> n1 {'src': 0, 'dst': 4294967295}]",
        "'ended: handler_exit, exit code 0'",
        "40",
    ]
    script = tmp_path / "session.py"
    script.write_text("s.break_when('n3', 'counter', '==', 7)\ns.cont().why\ns.state('n3')['counter']\n")
    out = pstack("debug", RING, str(script), "--rmap", '{"n3": 1}')
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["1", "'breakpoint 1 (n3.counter == 7)'", "7"]
    bad = pstack("debug", RING, "-c", "s.state('n9')")
    assert bad.returncode == 1
    assert bad.stderr.strip() == "pstack: error: no device 'n9' in ring-oscillator-01.xml"
    script.write_text("s.step()\nx = s.state('n0')['nope']\n")
    bad = pstack("debug", RING, str(script))
    assert bad.returncode == 1 and bad.stderr.strip() == "pstack: error: session.py:2: KeyError: 'nope'"


def test_pstack_debug_opens_a_pcli_session_with_s_bound(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PSTACK_", "TMUX"))}
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    with Terminal([*PSTACK_CMD, "debug", RING, "-n"], env) as t:
        t.wait_for(r"s \(or session\) is bound to it")
        t.wait_for(r"^fleet: none \(this session needs no fleet\)$")
        t.wait_for(r"^pcli>")
        t.send("s.step(2)")
        t.wait_for(r"^deliver n0:toggle_out -> n1 \{'src': 0, 'dst': 4294967295\}\n  Log \[device n1, level 1\]: "
                   r"counter = 1\n-- 2 events; stopped$")
        t.send("s.state('n1')")
        t.wait_for(r"'counter': 1")
        t.send("s.cont()")
        t.wait_for(r"^-- 78 events; ended: handler_exit, exit code 0$")
        t.send("s.step()")
        t.wait_for(r"DebugError: the session has ended \(handler_exit, exit code 0\)")
        t.send("exit()")
        assert t.wait_exit() == 0


def test_an_interrupt_stops_a_long_cont_where_it_is(tmp_path: Path) -> None:
    """What Ctrl-C does in pcli: the engine takes SIGINT as an order to stop after its current event."""
    app = long_ring(tmp_path, 2_000_000_000)
    with debug(app, level=0) as s:
        timer = threading.Timer(0.5, s.engine.proc.send_signal, (signal.SIGINT,))
        timer.start()
        started = time.monotonic()
        stop = s.cont()
        timer.join()
        assert stop.why == "interrupted (Ctrl-C)" and stop.ran > 0 and not s.ended
        assert time.monotonic() - started < 60  # the whole run would take hours
        assert sum(counters(s)) == stop.ran // 2 + 1  # a count per delivery (every other event), and n0's OnInit
        assert s.step(2).ran == 2  # the session goes on


def test_ctrl_c_in_a_pstack_debug_session_stops_the_run(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PSTACK_", "TMUX"))}
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    with Terminal([*PSTACK_CMD, "debug", long_ring(tmp_path, 2_000_000_000), "-n", "-q", "-l", "0"], env) as t:
        t.wait_for(r"^pcli>")
        t.send("s.cont()")
        time.sleep(1.0)
        t.keys("C-c")
        t.wait_for(r"^-- \d+ events; interrupted \(Ctrl-C\)$", timeout=60)
        t.send("s.step(2).ran")
        t.wait_for(r"^2$")
        t.send("exit()")
        assert t.wait_exit() == 0


def test_a_handlers_printf_is_a_log_line_of_its_event(tmp_path: Path) -> None:
    finished = "bool finished = deviceState->counter >= 10;"
    text = Path(RING).read_text().replace(finished, 'printf(".looks like a reply\\n"); ' + finished)
    app = tmp_path / "printf.xml"
    app.write_text(text)
    with debug(str(app)) as s:
        got = s.step(2)
        assert got[-1].kind == "deliver" and got[-1].logs[0] == ".looks like a reply"
        assert s.cont().why == "ended: handler_exit, exit code 0"
