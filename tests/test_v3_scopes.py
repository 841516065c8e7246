"""v3 handler scope: constants, Orchestrator macros, doSend, const-ness where graph_schema makes it
const, assert, exit markers (tests/data/v3/scopes.xml)."""
from __future__ import annotations

from pathlib import Path

import pytest

from pstack_tasks.exceptions import BuildError, SimulationFailed
from pstack_tasks.native.simulate import psim
from support.apps import V3_DATA, v3_variant

SCOPES = V3_DATA / "scopes.xml"


def test_constants_macros_and_cancelled_sends() -> None:
    result = psim(SCOPES, options={"quiet": True})
    p = result["states"]["p"]
    assert p["flags"] == 1 | (2 << 4) | (4 << 8) | (2 << 12) | (2 << 16) | (2 << 20) | (1 << 24)
    assert p["counts"] == 2 * 100 + 3 * 10 + 1 + 1000 + 10000
    assert p["after_return"] == 0          # `return` in OnInit left the handler early
    assert p["tries"] == 4 and p["got"] == 2 + 4  # sends 2 and 4 went; 1 and 3 were cancelled
    m = result["metrics"]
    assert (m["Sent messages"], m["Cancelled sends"], m["Delivered messages"]) == (4, 4, 4)


@pytest.mark.parametrize("old, new, words", [
    ("*readyToSend = 0;\n          if", "deviceState->tries = 0; *readyToSend = 0;\n          if",
     ["ReadyToSend", "read-only"]),
    ("DEVICESTATE(got) +=", "message->v = 1; DEVICESTATE(got) +=", ["OnReceive of pin 'y'", "read-only"]),
    ("DEVICESTATE(got) +=", "edgeProperties->k = 1; DEVICESTATE(got) +=", ["OnReceive of pin 'y'", "read-only"]),
    ("deviceState->tries++;", "deviceState->tries++; graphProperties->limit = 1;", ["OnSend of pin 'c'", "read-only"]),
])
def test_v3_handlers_cannot_write_what_graph_schema_makes_const(tmp_path: Path, old: str, new: str,
                                                                  words: list[str]) -> None:
    with pytest.raises(BuildError) as info:
        psim(v3_variant("scopes.xml", old, new, tmp_path), options={"quiet": True})
    for w in words:
        assert w in str(info.value)


def test_assert_names_device_handler_and_assertion(tmp_path: Path) -> None:
    app = v3_variant("scopes.xml", "deviceState->tries++;", "deviceState->tries++; assert(deviceState->tries < 3);",
                     tmp_path)
    with pytest.raises(SimulationFailed, match=r"assertion failed in device '[pq]', handler OnSend of pin 'c' "
                                               r"\(device type 'dev'\).*deviceState->tries < 3"):
        psim(app, options={"quiet": True})


@pytest.mark.parametrize("marker, code", [("_HANDLER_EXIT_SUCCESS_9be65737_", 0), ("_HANDLER_EXIT_FAIL_9be65737_", 1)])
def test_exit_markers_end_the_run(tmp_path: Path, marker: str, code: int) -> None:
    app = v3_variant("scopes.xml", "deviceState->tries++;",
                     f'deviceState->tries++; if (deviceState->tries == 2) handler_log(0, "{marker}");', tmp_path)
    m = psim(app, options={"quiet": True})["metrics"]
    assert (m["Exit reason"], m["Exit code"]) == ("handler_exit", code)
    assert m["Sent messages"] < 4
