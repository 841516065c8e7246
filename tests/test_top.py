"""top: the rows it draws (from plain data), and `pstack top` live in a real terminal on the fleet."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rich.console import Group

from pstack_tasks.ui.columns import meter, order_for_view
from pstack_tasks.ui.tables import ansi_text, engine_table, plain_text, process_table
from pstack_tasks.ui.top import Snapshot, render
from support.apps import variant
from support.fleet import WorkerFleet
from support.paths import PSTACK
from support.terminal import Terminal, tmux_servers

RING = str(PSTACK / "ring-oscillator-01.xml")
FLEET = [
    {"engine": "psim", "host": "alpha", "slots": 2, "busy": 2, "alive": True, "os_pid": 101, "since": 0},
    {"engine": "psim", "host": "beta", "slots": 2, "busy": 0, "alive": True},
    {"engine": "dummy", "host": "gone", "slots": 4, "busy": 0, "alive": False},
]


def proc(pid: int, state: str, regions: int, **more: object) -> dict[str, object]:
    row: dict[str, object] = {"pid": pid, "state": state, "user": "ann", "engine": "psim", "graph_type": "ro",
                              "regions": list(range(regions)), "devices": 4, "edges": 4, "elapsed": 3.25,
                              "reason": ""}
    row.update(more)
    return row


def test_the_usage_meter_fills_with_busy_slots() -> None:
    assert meter(0, 4) == "[          ] 0/4"
    assert meter(2, 4) == "[|||||     ] 2/4"
    assert meter(4, 4) == "[||||||||||] 4/4"
    assert meter(0, 0) == "[          ] 0/0"


def test_engine_lines_show_name_type_slots_usage_and_status() -> None:
    lines = plain_text(engine_table(FLEET)).splitlines()
    assert lines[0].split() == ["TYPE", "NAME", "SLOTS", "BUSY", "USAGE", "STATUS", "PID", "SINCE"]
    assert lines[1].split()[:4] == ["psim", "alpha", "2", "2"] and "[||||||||||] 2/2  online" in lines[1]
    assert lines[3].split()[:2] == ["dummy", "gone"] and "offline" in lines[3]


def test_process_lines_show_share_of_slots_messages_delivered_and_reason() -> None:
    lines = plain_text(process_table([proc(7, "Running", 2, delivered=1234), proc(6, "Waiting", 3),
                                      proc(12345, "Running", 1, elapsed=125.0),
                                      proc(4, "Killed", 1, reason="killed by bob")], FLEET)).splitlines()
    assert lines[0].split() == ["PID", "STATE", "REC", "USER", "ENGINE", "REGIONS", "SHARE", "DEVICES", "EDGES",
                                "DELIVERED", "ELAPSED", "GRAPH", "REASON"]
    # two regions of psim's 4 online slots (the offline dummy worker does not count)
    assert lines[1].split() == ["7", "Running", "-", "ann", "psim", "2", "50%", "4", "4", "1234", "3.2s", "ro"]
    assert lines[2].split()[6] == "-" and lines[2].split()[9] == "0"  # holds no slots; no counter published yet
    assert lines[3].split() == ["12345", "Running", "-", "ann", "psim", "1", "25%", "4", "4", "0", "2m05s", "ro"]
    assert lines[4].endswith("  ro     killed by bob")
    # numbers align right under their header, text left
    assert lines[1].index("1234") + 4 == lines[0].index("DELIVERED") + len("DELIVERED")
    assert lines[1].index("ro") == lines[0].index("GRAPH")


LOST = "region 1 on w2 stopped responding (its worker was lost)"


def test_recoveries_show_in_the_rec_column_and_a_recovering_process_says_what_it_lost() -> None:
    notes = [{"time": 1.0, "reason": "region 0 on w1: the worker on w1 running it died", "checkpoint": 2},
             {"time": 2.0, "reason": LOST, "checkpoint": 5}]
    procs = [proc(9, "Recovering", 2, recoveries=notes), proc(8, "Done", 2, recoveries=notes[:1],
                                                               reason="exit code 0 (all quiet)"), proc(7, "Done", 2)]
    lines = plain_text(process_table(procs, FLEET)).splitlines()
    assert lines[1].split()[:3] == ["9", "Recovering", "2"]
    assert lines[1].endswith(f"ro     recovering from checkpoint 5: {LOST}")
    assert lines[2].split()[:3] == ["8", "Done", "1"] and lines[2].endswith("exit code 0 (all quiet)")
    assert lines[3].split()[:3] == ["7", "Done", "-"]
    assert "\x1b[1;33mRecovering" in ansi_text(process_table(procs, FLEET), width=200)
    # top: a Recovering process is active (listed first, counted), with the same REC column
    screen = render(Snapshot(FLEET, [proc(p, "Done", 1) for p in range(30, 20, -1)] + procs[:1], taken=0), height=14)
    assert "processes: 1 active, 11 listed" in screen[0]
    header = next(i for i, x in enumerate(screen) if x.lstrip().startswith("PID"))
    assert screen[header].split()[:4] == ["PID", "STATE", "REC", "USER"]
    assert screen[header + 1].split()[:3] == ["9", "Recovering", "2"]


def test_a_terminal_gets_coloured_states_and_a_pipe_plain_text() -> None:
    procs = [proc(3, "Running", 1), proc(2, "Failed", 1, reason="region 0 crashed"), proc(1, "Done", 1)]
    coloured = ansi_text(process_table(procs, FLEET), width=120)
    assert "\x1b[32mRunning" in coloured and "\x1b[1;31mFailed" in coloured and "\x1b[34mDone" in coloured
    assert "\x1b[" not in plain_text(process_table(procs, FLEET))
    # a narrow terminal cuts the free text of a row (top), or wraps it (ps), never the numbers
    one_line = ansi_text(process_table(procs, FLEET, one_line=True), width=100).splitlines()
    assert len(one_line) == 4 and "…" in one_line[2]
    wrapped = plain_text(process_table(procs, FLEET), width=100).splitlines()
    assert len(wrapped) > 4 and wrapped[2].split()[:4] == ["2", "Failed", "-", "ann"]


def test_the_screen_puts_active_processes_first_and_fits_the_terminal() -> None:
    procs = [proc(p, "Done", 1) for p in range(30, 10, -1)] + [proc(3, "Running", 1)]
    assert [p["pid"] for p in order_for_view(procs, 3)] == [3, 30, 29]
    lines = render(Snapshot(FLEET, procs, taken=0), height=12)
    assert len(lines) == 12
    assert lines[0].endswith("engines: 2 online, 2/4 slots busy - processes: 1 active, 21 listed - q quits")
    header = lines.index(next(x for x in lines if x.lstrip().startswith("PID")))
    assert lines[header + 1].split()[:2] == ["3", "Running"]
    assert [x.split()[0] for x in lines[header + 1:]] == ["3", "30", "29", "28"]  # as many as fit
    assert render(Snapshot(error="cannot read the fleet: Connection refused"))[1].startswith("!! cannot read")


def test_pstack_top_shows_engines_and_a_running_process_and_q_quits(tmp_path: Path, on_fleet: WorkerFleet) -> None:
    from pstack_tasks.fleet.client import kill, run, status
    future = run(RING, engine="dummy", options={"seconds": 30}, async_=True)
    pid = future.pid  # type: ignore[union-attr]
    user = status(pid)["user"]
    forever = variant("ring-oscillator-01.xml", "bool finished = deviceState->counter >= 10;",
                      "bool finished = false;", tmp_path)
    ring = run(str(forever), rmap={"n1": 1}, async_=True).pid  # type: ignore[union-attr]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TMUX")}
    env.update(PSTACK_REDIS_URL=on_fleet.url, PSTACK_KEY_PREFIX=on_fleet.prefix)
    try:
        with Terminal([sys.executable, "-m", "pstack_tasks.ui.cli.pstack", "top"], env, width=160, height=30) as t:
            t.wait_for(r"^pstack top - .* engines: 3 online, 3/8 slots busy")
            for name, kind in (("alpha", "psim"), ("beta", "psim"), ("delta", "dummy")):
                t.wait_for(rf"^{kind} +{name} +\d+ +\d+ +\[[| ]+\] \d+/\d+ +online")
            t.wait_for(rf"^ *{pid} +Running +- +{user} +dummy +1 +25% +4 +4 +\d+ +(-|[\d.]+k?/s) +[\d.]+s +ro$")
            # messages delivered so far, live: a psim process that never ends on 2 of psim's 4 slots
            t.wait_for(rf"^ *{ring} +Running +- +{user} +psim +2 +50% +4 +4 +[1-9]\d* +[\d.]+[kM]?/s +[\d.]+s +ro$")
            assert "\x1b[32mRunning" in t.screen(escapes=True)  # states in colour
            t.keys("q")
            assert t.wait_exit(timeout=10) == 0
    finally:
        assert (kill(pid), kill(ring)) == ("Killed", "Killed")
    assert tmux_servers() == []


def test_pstack_top_and_pcli_name_an_unreachable_fleet() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PSTACK_")}
    p = subprocess.run([sys.executable, "-m", "pstack_tasks.ui.cli.pstack", "top"], env=env, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 5 and "PSTACK_REDIS_URL is not set" in p.stderr
    env["PSTACK_REDIS_URL"] = "redis://127.0.0.1:1/0"
    for cmd in (["pstack_tasks.ui.cli.pstack", "top"], ["pstack_tasks.ui.cli.pcli", "-q"]):
        p = subprocess.run([sys.executable, "-m", *cmd], env=env, capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL)
        assert p.returncode == 5, p.stderr
        assert "cannot reach Redis at redis://127.0.0.1:1/0" in p.stderr


def test_top_shows_each_running_process_s_delivery_rate_since_the_last_refresh() -> None:
    from pstack_tasks.ui.columns import rate
    from pstack_tasks.ui.top import with_rates
    assert [rate(None), rate(850), rate(12_345), rate(2_100_000)] == ["-", "850/s", "12.3k/s", "2.10M/s"]
    first = Snapshot(FLEET, [proc(3, "Running", 2, delivered=1000), proc(2, "Done", 1, delivered=40)], taken=10.0)
    second = with_rates(Snapshot(FLEET, [proc(3, "Running", 2, delivered=26_000), proc(2, "Done", 1, delivered=40)],
                                 taken=10.5), first)
    assert second.rates == {3: 50_000.0}
    lines = render(second, height=12)
    header = next(line for line in lines if line.lstrip().startswith("PID"))
    assert header.split()[9:11] == ["DELIVERED", "RATE"]
    running = next(line for line in lines if line.split()[:2] == ["3", "Running"])
    assert running.split()[9:11] == ["26000", "50.0k/s"]
    assert next(line for line in lines if line.split()[:2] == ["2", "Done"]).split()[10] == "-"
    coloured = ansi_text(screen_of(second), width=160)
    assert "\x1b[32mRunning" in coloured and "\x1b[34mDone" in coloured  # states in colour
    # ps keeps its columns: the rate belongs to the live view
    assert "RATE" not in plain_text(process_table([proc(3, "Running", 2)], FLEET))


def screen_of(snap: Snapshot) -> Group:
    from pstack_tasks.ui.top import screen
    return screen(snap, 12)
