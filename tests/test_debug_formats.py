"""The step debugger over the formats (issue 13, part 3): v3 corpus applications with OnHardwareIdle
rounds, a v4 file that ends by an exit marker, indexed sends, a split; each run through ``cont()``
to psim's result, and idle rounds seen as events while stepping."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pstack_tasks import debug, psim
from support.paths import CORPUS, DATA

TIMES = ("Load seconds", "Run seconds")
REMOTE = ("Remote messages sent", "Remote messages received")


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Some corpus applications write files where they run (ring_test_output, ...): here, not in the clone."""
    monkeypatch.chdir(tmp_path)


def same_run(app: str, rmap: dict[str, int] | None = None) -> dict[str, Any]:
    """cont() from the start gives psim's states and counts; the debugger's result."""
    ref = psim(app, options={"quiet": True})
    with debug(app, rmap=rmap, level=0) as s:
        s.cont()
        assert s.ended
        got = s.result()
    assert got["states"] == ref["states"]
    skip = TIMES + (REMOTE if rmap else ())  # psim ran it whole: nothing crossed regions there
    counts = {k: v for k, v in ref["metrics"].items() if k not in skip}
    assert {k: v for k, v in got["metrics"].items() if k not in skip} == counts
    return got


@pytest.mark.parametrize("name", ["apsp_vec_barrier_16_4.xml", "clock_tree_3_2_10.xml", "hello_world_inst.xml"])
def test_corpus_apps_run_to_psims_result(name: str) -> None:
    got = same_run(str(CORPUS / name))
    if name.startswith("apsp_vec_barrier"):  # v3 OnHardwareIdle barriers, then handler_exit
        assert got["metrics"]["Hardware idle rounds"] == 3


def test_idle_rounds_are_events_when_stepping() -> None:
    app = str(DATA / "v3" / "idle.xml")
    with debug(app, level=0) as s:
        stop = s.until(lambda s: any(e.kind == "idle" for e in s.log()[-1:]))
        assert stop[-1].kind == "idle" and str(stop[-1]) == "OnHardwareIdle round 1"
        s.cont()
        assert s.exit_reason == "quiescence" and s.exit_code == 1  # v3: graph_schema's idle exit code
        assert s.log()[-1].kind == "end" and s.log()[-2].kind == "quiescent"
        assert s.result()["metrics"]["Hardware idle rounds"] == psim(app, options={"quiet": True})["metrics"][
            "Hardware idle rounds"]


def test_a_v4_exit_marker_ends_the_session_as_in_psim(tmp_path: Path) -> None:
    text = (DATA / "v4" / "ring-oscillator.xml").read_text()
    assert text.count("handler_exit(0);") == 1
    app = tmp_path / "ring-marker.xml"
    app.write_text(text.replace("handler_exit(0);", 'handler_log(0, "_HANDLER_EXIT_SUCCESS_9be65737_");'))
    got = same_run(str(app))
    assert got["metrics"]["Exit reason"] == "handler_exit" and got["metrics"]["Exit code"] == 0


def test_indexed_sends_and_a_split() -> None:
    app = str(DATA / "v3" / "indexed.xml")
    with debug(app) as s:
        names = s.app.instance.names
    got = same_run(app, {names[-1]: 1})["metrics"]
    assert got["Remote messages sent"] == got["Remote messages received"] > 0


@pytest.mark.parametrize("app", [DATA / "v4" / "supervisor_idle.xml", DATA / "v4" / "supervisor_bcast.xml",
                                 DATA / "v4" / "supervisor_post.xml", CORPUS / "orchestrator_examples_ring_test.xml"])
def test_v4_supervisors_run_to_psims_result(app: Path) -> None:
    got = same_run(str(app))
    assert got["metrics"]["Supervisor receives"] > 0


def test_a_send_to_the_supervisor_is_one_event() -> None:
    with debug(str(CORPUS / "orchestrator_examples_ring_test.xml"), level=0) as s:
        stop = s.until(lambda s: s.log()[-1].destinations == ("supervisor",))
        assert stop[-1].kind == "send" and str(stop[-1]).endswith(str(stop[-1].fields))
        assert s.result()["metrics"]["Supervisor receives"] == 1


def test_externals_are_played_by_inject_and_halt_ends_the_session() -> None:
    """The corpus's external ping-pong, with the session playing outsider_0 as graph_schema's provider does."""
    with debug(str(CORPUS / "test_external_ping_pong_graph_inst_1.xml"), level=0) as s:
        for i in range(10):
            s.inject("outsider_0", "out", payload1=i + 1, payload2=i * i)
            into, reply, back = s.step(3)
            assert (into.kind, into.destinations, reply.kind, reply.device) == ("deliver", ("insider_0",), "send",
                                                                                 "insider_0")
            assert reply.fields == {"payload1": i + 1, "payload2": float(i * i)}
            assert back.destinations == ("outsider_0",)  # an external: nothing runs, the delivery counts
        s.inject("outsider_0", "stop", code=3)
        end = s.cont()
        assert end.why == "ended: halt, exit code 3" and (s.exit_reason, s.exit_code) == ("halt", 3)
        assert s.result()["metrics"]["Delivered messages"] == 21


@pytest.mark.parametrize("app", [DATA / "v4" / "structs.xml", DATA / "v4" / "typedefs.xml", DATA / "v3" / "values.xml"])
def test_state_reads_every_member_as_the_graph_stage_packs_it(app: Path) -> None:
    """state() slices arrays of scalars out of the flat values (fast, for until's predicates); the
    graph stage's Packer.unpack is the reference, over tuples, nested arrays and typedefs."""
    with debug(str(app), level=0) as s:
        s.cont()
        for name in s.app.instance.names:
            d = s.app.instance.index[name]
            layout = s._layout(d)
            assert s.state(name) == layout.packer.unpack(s._state_bytes(d))
