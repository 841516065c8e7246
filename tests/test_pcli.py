"""pcli as users meet it: a real terminal (tmux) on the real fleet; and its built-ins in-process."""
from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import pytest

from pstack_tasks.exceptions import GraphError
from pstack_tasks.ui.shell import builtin_functions, history_path
from pstack_tasks.ui.shell.apps import devices, instance, messages, unit
from pstack_tasks.ui.shell.builtins import ps, summary
from pstack_tasks.ui.shell.display import MAX_STATES, result_record
from pstack_tasks.ui.shell.repl import masked
from pstack_tasks.ui.tables import plain_text
from support.fleet import WorkerFleet, processes_table
from support.paths import PSTACK
from support.terminal import Terminal, tmux_servers

PCLI = [sys.executable, "-m", "pstack_tasks.ui.cli.pcli"]
RING = str(PSTACK / "ring-oscillator-01.xml")
BUILTINS = ["run", "block", "ps", "kill", "status", "engines", "top",
            "batch", "batches", "batch_show", "batch_kill", "plot_batch", "inspect", "inject", "flush", "draw", "debug",
            "snapshot", "checkpoint", "checkpoints", "restart", "recoveries", "pp", "read", "devices", "messages",
            "instance", "unit", "help"]
COLOUR = r"\x1b\[(3[0-7]|38;|9[0-7])[;m]"  # a foreground colour escape sequence


def terminal_env(tmp_path: Path, fleet: WorkerFleet | None) -> dict[str, str]:
    """The environment of the tmux server: the fleet's (or none), a history of the test's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PSTACK_", "TMUX"))}
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    if fleet is not None:
        env.update(PSTACK_REDIS_URL=fleet.url, PSTACK_KEY_PREFIX=fleet.prefix)
    return env


def test_a_pcli_session_runs_lists_kills_and_helps(tmp_path: Path, on_fleet: WorkerFleet) -> None:
    with Terminal(PCLI, terminal_env(tmp_path, on_fleet)) as t:
        t.wait_for(r"^engines: 3 online \(dummy, psim\), 8 slots$")
        t.wait_for(r"^pcli>")

        t.send("help()")
        table = t.wait_for(r"^BUILT-IN +WHAT IT DOES\n((?:.*\n){%d})" % len(BUILTINS))
        listed = [line.split("(")[0] for line in table.group(1).splitlines()]
        assert listed == BUILTINS
        assert re.search(r"^kill\(pid\) +Kill a process; the state it ended in", table.group(1), re.M)

        t.send(f'r = run("{RING}", rmap={{"n1": 1}})')
        t.send("r")
        t.wait_for(r"^Metric \[Delivered messages\]: 40\nMetric \[Exit code\]: 0\n"
                   r"State \[n0\]: state = 0, counter = 10")
        t.send("r['pid']")
        done = int(t.wait_for(r"^(\d+)$").group(1))

        t.send(f'f = run("{RING}", engine="dummy", options={{"seconds": 30}}, async_=True)')
        t.send("f")
        pid = int(t.wait_for(r"Future\(pid=(\d+)\)").group(1))
        t.send("ps()")
        t.wait_for(r"^ *PID +STATE +REC +USER +ENGINE +REGIONS +SHARE +DEVICES +EDGES +DELIVERED +ELAPSED +GRAPH"
                   r" +REASON$")
        t.wait_for(rf"^ *{pid} +(Waiting|Running) +- +\S+ +dummy +1 +\S+ +4 +4 +\d+ +[\d.]+s +ro$")
        t.wait_for(rf"^ *{done} +Done +- +\S+ +psim +2 +- +4 +4 +40 +[\d.]+s +ro +exit code 0")  # what it delivered

        t.send("kill(f.pid)")
        t.wait_for(r"^'Killed'$", timeout=10)
        t.send("ps()")
        t.wait_for(rf"^ *{pid} +Killed +- +\S+ +dummy +1 .* ro +killed by \S+$")
        assert re.search(r"\x1b\[35mKilled", t.screen(escapes=True))  # states in colour

        t.send("top()")
        t.wait_for(rf"^pstack top - .* q quits$(.|\n)*^ *{pid} +Killed")
        t.keys("q")
        t.send("'back from top'")
        t.wait_for(r"^'back from top'$")

        assert re.search(COLOUR, t.screen(escapes=True))  # colour is on unless -n
        t.send("exit()")
        assert t.wait_exit() == 0
    assert "kill(f.pid)" in history_path({"XDG_STATE_HOME": str(tmp_path / "state")}).read_text()
    assert tmux_servers() == []


def test_pcli_quiet_has_no_banner_no_colour_and_keeps_python(tmp_path: Path, on_fleet: WorkerFleet) -> None:
    with Terminal([*PCLI, "-q", "-n"], terminal_env(tmp_path, on_fleet)) as t:
        t.wait_for(r"^pcli>")
        t.send("import math")
        t.send("[math.factorial(5), len(devices('" + RING + "'))]")
        t.wait_for(r"^\[120, 4\]$")
        assert "pcli 0.1.0" not in t.screen() and "fleet:" not in t.screen()
        t.send(f'run("{RING}", engine="dummy", options={{"seconds": 1.5}})')
        t.wait_for(r"process \d+ Running: 1 region, [\d,]+ messages delivered, [\d.]+ s")  # while it waits
        t.wait_for(r"^Metric \[Exit code\]: 0$")
        t.send('pp({"delivered": [1, 2]})')
        t.wait_for(r"^\{'delivered': \[1, 2\]\}$")
        # -n: no foreground colour anywhere (the prompt, the input, pp's output); bold is not a colour
        assert not re.search(COLOUR, t.screen(escapes=True))
        t.keys("C-d")
        assert t.wait_exit() == 0


@pytest.mark.fleet
def test_pcli_without_a_fleet_runs_on_an_embedded_stack_and_stops_it(tmp_path: Path) -> None:
    with Terminal([*PCLI, "-n", "-e", "psim", "-e", "dummy", "-s", "2"], terminal_env(tmp_path, None)) as t:
        t.wait_for(r"^fleet: embedded on this machine .*psim, dummy x 2 slots.*stops when pcli exits$", timeout=60)
        t.wait_for(r"^engines: 2 online \(dummy, psim\), 4 slots$")
        t.send(f'run("{RING}", rmap={{"n1": 1, "n2": 1}})')
        t.wait_for(r"^Metric \[Delivered messages\]: 40$", timeout=60)
        t.send(f'f = run("{RING}", engine="dummy", options={{"seconds": 60}}, async_=True)')
        t.send("status(f.pid)['state']")
        t.wait_for(r"^'Running'$")
        t.send("exit()")  # the running process is killed, so the workers stop at once
        start = time.monotonic()
        assert t.wait_exit() == 0
        assert time.monotonic() - start < 10
    left = [args for _, _, args in processes_table() if args.startswith(sys.executable)
            and any(f"{name}@local" in args for name in ("psim", "dummy", "control"))]
    assert left == []


# --- the built-ins, in this process ------------------------------------------------------------

def test_history_lives_under_the_xdg_state_directory() -> None:
    assert history_path({"XDG_STATE_HOME": "/s"}) == Path("/s/pstack-celery/pcli_history")
    assert history_path({"HOME": "/home/ann"}) == Path("/home/ann/.local/state/pstack-celery/pcli_history")


def test_help_lists_every_builtin_with_its_first_docstring_line(capsys: pytest.CaptureFixture[str]) -> None:
    fns = builtin_functions()
    assert list(fns) == BUILTINS
    lines = plain_text(summary(fns)).splitlines()
    assert lines[0].split() == ["BUILT-IN", "WHAT", "IT", "DOES"]
    row = next(line for line in lines if line.startswith("run("))
    assert row.startswith("run(xml, rmap=None, rcon=None, ...)  ")  # cut to fit a terminal line
    assert max(len(line) for line in lines) <= 160
    assert row.endswith("Run an application (path or XML text) as a process; its result, or a Future with async_=True.")
    fns["help"]()
    out = capsys.readouterr().out
    assert "unit(py, result=None, rmap=None, ...)" in out and "ps(user=None, mine=False, ...)" in out
    fns["help"](len)  # still Python's help
    assert "Help on built-in function len" in capsys.readouterr().out


def test_devices_messages_and_instance_describe_an_application() -> None:
    names = devices(RING)
    assert names == ["n0", "n1", "n2", "n3"] and str(names) == "[n0, n1, n2, n3 (4 devices)]"
    msgs = messages(RING)
    assert [m["id"] for m in msgs] == ["__init__", "toggle"]
    assert msgs[1] == {"id": "toggle", "payload": "uint32_t src, uint32_t dst", "bytes": 8}
    summary_ = instance(Path(RING).read_text())  # XML text works as well as a path
    assert (summary_["graph_type"], summary_["devices"], summary_["edges"], summary_["version"]) == ("ro", 4, 4, 2)
    node = summary_["device_types"][0]
    assert node["id"] == "node" and node["devices"] == 4 and node["outputs"] == ["toggle_out"]
    assert "uint32_t toggle_buffer_dst[1024]" in node["state"]
    assert str(summary_).splitlines()[0].startswith("graph type ro (graph-schema v2), instance graph1")


def test_the_application_helpers_name_a_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text("<Graphs xmlns=\"https://poets-project.org/schemas/virtual-graph-schema-v2\">\n<oops></Graphs>")
    with pytest.raises(GraphError, match=r"bad.xml:2: malformed XML"):
        devices(str(bad))


def test_a_long_result_prints_short_but_keeps_every_state() -> None:
    states = {f"d{i}": {"x": i} for i in range(MAX_STATES + 5)}
    rec = result_record({"states": states, "metrics": {"Delivered messages": 7, "Exit code": 0}, "pid": 3})
    lines = str(rec).splitlines()
    assert lines[:3] == ["Metric [Delivered messages]: 7", "Metric [Exit code]: 0", "State [d0]: x = 0"]
    assert lines[-2] == "... 5 more states (the value holds them all: _['states'])"
    assert len(rec["states"]) == MAX_STATES + 5


def test_the_banner_hides_a_redis_password() -> None:
    assert masked("redis://:s3cret@host:6379/0") == "redis://:***@host:6379/0"
    assert masked("redis://ann:s3cret@host/0") == "redis://ann:***@host/0"
    assert masked("redis://host:6379/0") == "redis://host:6379/0"


def test_unit_runs_an_application_and_its_checks(tmp_path: Path, on_fleet: WorkerFleet) -> None:
    (tmp_path / "ring.xml").write_text(Path(RING).read_text())
    (tmp_path / "ring.py").write_text(
        'RMAP = {"n1": 1}\n'
        'def check_delivered(result):\n    assert result["metrics"]["Delivered messages"] == 40\n'
        'def check_counters(result):\n    return all(s["counter"] == 10 for s in result["states"].values())\n'
        'def check_wrong(result):\n    assert result["metrics"]["Exit code"] == 1, "expected exit code 1"\n')
    report = unit(str(tmp_path / "ring.xml"))
    assert [(r["check"], r["passed"]) for r in report] == [
        ("run", True), ("delivered", True), ("counters", True), ("wrong", False)]
    assert report[3]["detail"] == "expected exit code 1 [ring.py:7]"
    assert str(report).splitlines()[-1] == "ring.xml: 3/4 passed"
    pid = int(report[0]["detail"].split()[1])
    mine = ps(mine=True)
    assert pid in [p["pid"] for p in mine] and pid not in [p["pid"] for p in ps(user="nobody-else")]
    row = next(line for line in str(mine).splitlines() if line.split()[0] == str(pid))
    cells = row.split()
    assert (cells[1], cells[4], cells[5], cells[9], cells[11]) == ("Done", "psim", "2", "40", "ro")
    assert str(report).splitlines()[0].split() == ["CHECK", "RESULT", "DETAIL"]
