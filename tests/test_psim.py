"""psim on pstack's three test applications: exact results in one region and in region splits
through real socat and a real Redis, plus termination, exact floats and the engine cache."""
from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import pytest

from pstack_tasks import psim
from pstack_tasks.native.prepare import prepare
from support.apps import token_ring
from support.expected import DEVICES, EXPECTED, check
from support.paths import KEY_PREFIX, PSTACK


def splits(devices: list[str], regions: int) -> list[dict[str, int]]:
    """Region maps in which every device takes every region position (rotations of i % regions),
    plus each device alone in a region of its own."""
    maps = []
    for shift in range(regions):
        maps.append({d: (i + shift) % regions for i, d in enumerate(devices)})
    if regions == 2:
        for d in devices:
            maps.append({d: 1})
    return maps




@pytest.mark.parametrize("app", sorted(EXPECTED))
def test_single_region_gives_pstack_results(app: str) -> None:
    result = psim(PSTACK / app, options={"quiet": True})
    check(result, app)
    assert result["metrics"]["Exit reason"] == "handler_exit"


CASES = [(app, regions, rmap) for app in sorted(EXPECTED) for regions in (2, 4)
         for rmap in splits(DEVICES[app], regions)]


@pytest.mark.parametrize("app,regions,rmap", CASES, ids=[f"{a}-{n}r-{json.dumps(m)}" for a, n, m in CASES])
def test_region_splits_give_pstack_results(app: str, regions: int, rmap: dict, redis_url: str,
                                           redis_client: object, no_leftovers: None) -> None:
    result = psim(PSTACK / app, rmap=rmap, options={"quiet": True, "redis_url": redis_url, "prefix": KEY_PREFIX})
    check(result, app)
    per_region = result["regions"]
    assert sum(m["Delivered messages"] for m in per_region.values()) == EXPECTED[app][0]
    assert set(per_region) == {str(r) for r in set(rmap.values()) | ({0} if len(rmap) < len(DEVICES[app]) else set())}
    # every region pushed exactly what the others took in
    assert result["metrics"]["Remote messages sent"] >= result["metrics"]["Remote messages received"]
    assert not list(redis_client.scan_iter(f"{KEY_PREFIX}*.*")), "queues and counters are removed after the run"


def test_ring_split_in_two_matches_pstack_docs(redis_url: str) -> None:
    # Given pstack's documented split {"n1": 1}: region 1 delivers 10 and region 0 delivers 30.
    result = psim(PSTACK / "ring-oscillator-01.xml", rmap={"n1": 1},
                  options={"quiet": True, "redis_url": redis_url, "prefix": KEY_PREFIX})
    assert result["regions"]["0"]["Delivered messages"] == 30
    assert result["regions"]["1"]["Delivered messages"] == 10
    assert result["regions"]["1"]["Exit reason"] == "remote stop"


@pytest.mark.fleet
def test_split_with_a_private_redis_server_when_no_url_is_set(monkeypatch: pytest.MonkeyPatch,
                                                              no_leftovers: None) -> None:
    monkeypatch.delenv("PSTACK_REDIS_URL", raising=False)
    result = psim(PSTACK / "ring-oscillator-01.xml", rmap={"n2": 1}, options={"quiet": True})
    check(result, "ring-oscillator-01.xml")


@pytest.mark.parametrize("regions", [1, 2, 3, 4])
def test_a_split_without_handler_exit_ends_by_quiescence(tmp_path: Path, regions: int, redis_url: str,
                                                         no_leftovers: None) -> None:
    # Given a ring of 12 nodes each starting a token, with no handler_exit anywhere,
    # when it runs split over several regions, every hop crossing one,
    app = tmp_path / "tokens.xml"
    app.write_text(token_ring(12, 50))
    rmap = {f"n{i}": i % regions for i in range(12)}
    result = psim(app, rmap=rmap, options={"redis_url": redis_url, "prefix": KEY_PREFIX})
    # then it ends by itself with every message delivered exactly once.
    assert result["metrics"]["Delivered messages"] == 12 * 50
    assert result["metrics"]["Exit reason"] == "quiescence"
    assert all(s["counter"] == 50 and s["pending"] == 0 for s in result["states"].values())


def test_doubles_cross_regions_exactly(tmp_path: Path, redis_url: str) -> None:
    app = tmp_path / "tokens.xml"
    app.write_text(token_ring(6, 7))
    alone = psim(app, options={"quiet": True})
    split = psim(app, rmap={f"n{i}": i % 3 for i in range(6)},
                 options={"quiet": True, "redis_url": redis_url, "prefix": KEY_PREFIX})
    # x = 1/(3+id) is not a short decimal: any rounding on the wire would change the sums' bits.
    assert [s["sum"] for s in split["states"].values()] == [s["sum"] for s in alone["states"].values()]
    assert split["metrics"]["Remote messages received"] == 6 * 7


def test_second_run_of_a_graph_type_compiles_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pstack_tasks.native.build as build
    monkeypatch.setenv("PSTACK_CACHE_DIR", str(tmp_path / "cache"))
    small, large = tmp_path / "small.xml", tmp_path / "large.xml"
    small.write_text(token_ring(3, 2))
    large.write_text(token_ring(500, 2))
    first = prepare(small).engine
    calls = []
    real_run = build.subprocess.run
    monkeypatch.setattr(build.subprocess, "run", lambda *a, **k: calls.append(a) or real_run(*a, **k))
    second = prepare(large).engine  # same graph type, other size: the cached binary
    assert second == first and not calls
    assert psim(large, options={"quiet": True})["metrics"]["Delivered messages"] == 1000


def test_concurrent_builds_of_one_engine_are_safe(tmp_path: Path) -> None:
    import subprocess
    import sys
    app = tmp_path / "app.xml"
    app.write_text(token_ring(4, 3))
    env = {"PSTACK_CACHE_DIR": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    code = f"from pstack_tasks.native.prepare import prepare; print(prepare({str(app)!r}).engine)"
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
             for _ in range(4)]
    outs = [p.communicate(timeout=240)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len(set(outs)) == 1
    built = list((tmp_path / "cache" / "engines").iterdir())
    assert sorted(p.name for p in built if p.is_dir()) == [Path(outs[0]).parent.name], "one engine, no temp dirs"


def test_single_region_runs_are_deterministic(tmp_path: Path) -> None:
    app = tmp_path / "tokens.xml"
    app.write_text(token_ring(9, 13))
    runs = [psim(app, options={"quiet": True}) for _ in range(2)]
    for r in runs:
        del r["metrics"]["Load seconds"], r["metrics"]["Run seconds"]
    assert runs[0] == runs[1]


def test_every_two_region_split_of_the_ring(redis_url: str) -> None:
    # all 14 non-trivial two-way splits of the 4-node ring
    names = [f"n{i}" for i in range(4)]
    for bits in itertools.product([0, 1], repeat=4):
        if len(set(bits)) < 2:
            continue
        rmap = dict(zip(names, bits))
        result = psim(PSTACK / "ring-oscillator-01.xml", rmap=rmap,
                      options={"quiet": True, "redis_url": redis_url, "prefix": KEY_PREFIX})
        check(result, "ring-oscillator-01.xml")


SPINNER = """<?xml version="1.0"?>
<Graphs xmlns="https://poets-project.org/schemas/virtual-graph-schema-v2">
  <GraphType id="spin">
    <MessageTypes><MessageType id="__init__"/><MessageType id="tick"/></MessageTypes>
    <DeviceTypes>
      <DeviceType id="spinner">
        <State><Scalar name="spins" type="uint32_t"/><Scalar name="poked" type="uint32_t"/></State>
        <ReadyToSend><![CDATA[ *readyToSend = RTS_FLAG_self_out; ]]></ReadyToSend>
        <InputPin messageTypeId="__init__" name="__init__"><OnReceive><![CDATA[ ]]></OnReceive></InputPin>
        <InputPin messageTypeId="tick" name="self_in"><OnReceive><![CDATA[ deviceState->spins++; ]]></OnReceive>
        </InputPin>
        <InputPin messageTypeId="tick" name="poke"><OnReceive><![CDATA[
          deviceState->poked = 1; handler_exit(7); ]]></OnReceive></InputPin>
        <OutputPin messageTypeId="tick" name="self_out"><OnSend><![CDATA[ ]]></OnSend></OutputPin>
      </DeviceType>
      <DeviceType id="poker">
        <State><Scalar name="sent" type="uint32_t"/></State>
        <ReadyToSend><![CDATA[ *readyToSend = deviceState->sent ? 0 : RTS_FLAG_out; ]]></ReadyToSend>
        <InputPin messageTypeId="__init__" name="__init__"><OnReceive><![CDATA[ ]]></OnReceive></InputPin>
        <OutputPin messageTypeId="tick" name="out"><OnSend><![CDATA[ deviceState->sent = 1; ]]></OnSend></OutputPin>
      </DeviceType>
    </DeviceTypes>
  </GraphType>
  <GraphInstance id="g" graphTypeId="spin">
    <DeviceInstances><DevI id="s" type="spinner"/><DevI id="p" type="poker"/></DeviceInstances>
    <EdgeInstances><EdgeI path="s:self_in-s:self_out"/><EdgeI path="s:poke-p:out"/></EdgeInstances>
  </GraphInstance>
</Graphs>
"""


def test_remote_items_are_taken_in_while_local_work_remains(tmp_path: Path, redis_url: str,
                                                           no_leftovers: None) -> None:
    # Given a region that is never idle (a device sending to itself for ever)
    # and another region that sends it one message which calls handler_exit,
    app = tmp_path / "spin.xml"
    app.write_text(SPINNER)
    result = psim(app, rmap={"p": 1}, options={"quiet": True, "redis_url": redis_url, "prefix": KEY_PREFIX,
                                               "time_limit": 60})
    # then the message gets in while the spinner keeps working, and the run ends with its code.
    assert result["metrics"]["Exit reason"] == "handler_exit"
    assert result["metrics"]["Exit code"] == 7
    assert result["states"]["s"]["poked"] == 1 and result["states"]["s"]["spins"] > 0


def test_a_pin_without_edges_still_runs_its_send_handler(tmp_path: Path) -> None:
    from support.apps import variant
    app = variant("basic-01.xml", '<EdgeI path="device1:input-device0:output"/>', "", tmp_path)
    result = psim(app, options={"quiet": True})
    assert result["metrics"]["Sent messages"] == 10
    assert result["metrics"]["Delivered messages"] == 0
    assert result["metrics"]["Exit reason"] == "quiescence"
    assert result["states"] == {"device0": {"counter": 10}, "device1": {"counter": 0}}


def test_a_refused_termination_call_fails_the_region_instead_of_waiting_for_ever(tmp_path: Path, redis_url: str,
                                                                                no_leftovers: None) -> None:
    """The IDLE call's reply is skipped (docs/engine-protocol.md); when Redis refuses it (here: its
    calls hash is the wrong type), the region notices after 5 s of silence and fails, naming Redis."""
    import threading

    import redis

    from pstack_tasks.exceptions import SimulationFailed
    from pstack_tasks.native.options import RunOptions
    from pstack_tasks.native.region_run import run_one_region
    from pstack_tasks.native.relay import pool
    app = tmp_path / "tokens.xml"
    app.write_text(token_ring(4, 5))  # no handler_exit: it can only end through the IDLE calls
    prep = prepare(app)
    pid, prefix = 999_001, f"{KEY_PREFIX}refused:"
    client = redis.Redis.from_url(redis_url)
    client.set(f"{prefix}{pid}.active", 2)
    client.set(f"{prefix}{pid}.calls", "not a hash")
    outcome: dict[int, BaseException | None] = {}

    def region(r: int) -> None:
        opts = RunOptions(region=r, pid=pid, prefix=prefix, redis_url=redis_url, quiet=True)
        try:
            run_one_region(prep, {"n1": 1, "n3": 1}, opts)
            pool.close_all()
            outcome[r] = None
        except BaseException as e:  # noqa: BLE001 (the test looks at it)
            outcome[r] = e
    t0 = time.monotonic()
    threads = [threading.Thread(target=region, args=(r,)) for r in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    took = time.monotonic() - t0
    client.delete(*[f"{prefix}{pid}.{k}" for k in ("0", "1", "active", "idle", "calls")])
    assert set(outcome) == {0, 1}, "a region is still waiting"
    assert all(isinstance(e, SimulationFailed) for e in outcome.values()), outcome
    assert any("WRONGTYPE" in str(e) or "termination script" in str(e) for e in outcome.values()), outcome
    assert took < 12


def _protocol_values() -> dict[str, str]:
    """Every constant of pstack_tasks.protocol as the C literal the engine must define, spelled
    here from the Python values (not by the renderer under test)."""
    from pstack_tasks import protocol
    from pstack_tasks.protocol import QueueKeys

    def upper(cls: type) -> dict[str, object]:
        return {k: v for k, v in vars(cls).items() if k.isupper() and isinstance(v, (str, int))}

    want = {f"PSTACK_ITEM_{k}": f"'{v}'" for k, v in upper(protocol.ItemKind).items()}
    want |= {f"PSTACK_EXIT_REASON_{k}": f'"{v}"' for k, v in upper(protocol.ExitReason).items()}
    want |= {f"PSTACK_STATUS_{k}": str(v) for k, v in upper(protocol.EngineStatus).items()}
    want |= {f"PSTACK_METRIC_{k}": f'"{v}"' for k, v in upper(protocol.Metric).items()}
    want |= {"PSTACK_EXIT_SUCCESS_MARKER": f'"{protocol.EXIT_SUCCESS_MARKER}"',
             "PSTACK_EXIT_FAIL_MARKER": f'"{protocol.EXIT_FAIL_MARKER}"',
             "PSTACK_ENGINE_ERROR_PREFIX": f'"{protocol.ENGINE_ERROR_PREFIX}"',
             "PSTACK_LOG_LINE_PREFIX": f'"{protocol.LOG_LINE_PREFIX}"'}
    keys = QueueKeys("%s", "%ld")
    want |= {"PSTACK_KEY_QUEUE_FMT": f'"{keys.queue("%d")}"', "PSTACK_KEY_ACTIVE_FMT": f'"{keys.active}"',
             "PSTACK_KEY_IDLE_FMT": f'"{keys.idle}"', "PSTACK_KEY_CALLS_FMT": f'"{keys.calls}"'}
    return want


def _defines(text: str) -> dict[str, str]:
    import re
    return dict(re.findall(r"^#define (PSTACK_\w+) (.*)$", text, re.M))


def test_the_engine_source_defines_every_protocol_constant_as_protocol_py_does() -> None:
    """The protocol is rendered into every engine from pstack_tasks.protocol, and the runtime
    headers spell none of its names themselves."""
    from pstack_tasks.native.codegen import render
    from pstack_tasks.native.engine_inputs import RUNTIME_DIR
    defines = _defines(render(prepare(PSTACK / "basic-01.xml").app.graph_type).text)
    want = _protocol_values()
    assert {k: defines.get(k) for k in want} == want
    cpp = "".join(p.read_text() for p in sorted(RUNTIME_DIR.glob("*.hpp")))
    spelled = [v for k, v in want.items() if v.startswith('"') and not k.startswith("PSTACK_KEY_") and v in cpp]
    assert spelled == []


def test_a_changed_protocol_value_changes_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Engines are cached by their source: a changed protocol constant or IDLE script gives
    another source, type hash and cache key, so no engine built before the change is reused."""
    from pstack_tasks import protocol
    from pstack_tasks.native import build, protocol_cpp
    from pstack_tasks.native.codegen import render
    gt = prepare(PSTACK / "basic-01.xml").app.graph_type
    before = render(gt)
    monkeypatch.setattr(protocol.ExitReason, "QUIESCENCE", "all quiet")
    monkeypatch.setattr(protocol.ItemKind, "QUIESCENT", "7")
    protocol_cpp.protocol_defines.cache_clear()
    protocol_cpp.idle_script.cache_clear()
    try:
        after = render(gt)
        script = protocol_cpp.idle_script()
    finally:
        protocol_cpp.protocol_defines.cache_clear()
        protocol_cpp.idle_script.cache_clear()
    assert _defines(after.text)["PSTACK_EXIT_REASON_QUIESCENCE"] == '"all quiet"'
    assert "QUIESCENT, HARDWARE_IDLE = '7', '4'" in script
    assert after.type_hash != before.type_hash
    assert build.cache_key(after) != build.cache_key(before)


def test_c_string_literals_survive_the_compiler(tmp_path: Path) -> None:
    """What the renderer embeds (the IDLE script, names) reads back byte for byte in C++."""
    import subprocess

    from pstack_tasks.native.build import compiler
    from pstack_tasks.native.protocol_cpp import c_string, idle_script
    texts = ['quote " backslash \\ ??= trigraph', "tab\tnewline\nnul-free \x7f\x01", "é 1\0012", idle_script()]
    src = tmp_path / "lit.cpp"
    body = "".join(f"    fputs({c_string(t)}, stdout); fputc(0, stdout);\n" for t in texts)
    src.write_text(f"#include <cstdio>\nint main() {{\n{body}    return 0;\n}}\n")
    exe = tmp_path / "lit"
    subprocess.run([compiler(), "-std=gnu++17", "-o", str(exe), str(src)], check=True, capture_output=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True).stdout
    assert out.split(b"\0")[:-1] == [t.encode() for t in texts]
