"""psim, pstack and pcli exit with the same status for the same kind of error (docs/exit-status.md)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pstack_tasks.ui.cli import exit_status as status
from support.apps import token_ring, variant
from support.paths import PSTACK

RING = str(PSTACK / "ring-oscillator-01.xml")
#: nothing listens there: the connection is refused at once
DEAD_REDIS = "redis://127.0.0.1:1/0"


def command(name: str, *args: str, redis_url: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PSTACK_")}
    if redis_url:
        env["PSTACK_REDIS_URL"] = redis_url
    script = Path(sys.executable).parent / name  # the console script, as users run it
    return subprocess.run([str(script), *args], capture_output=True,
                          text=True, timeout=180, env=env, stdin=subprocess.DEVNULL)


def assert_exits(p: subprocess.CompletedProcess, expected: int, prog: str, text: str) -> None:
    assert p.returncode == expected, p.stderr
    assert text in p.stderr, p.stderr
    if expected != status.USAGE:  # click prints its usage lines for a usage error
        assert p.stderr.startswith(f"{prog}: error: ") and len(p.stderr.strip().splitlines()) == 1


def broken_apps(tmp_path: Path) -> dict[str, Path]:
    bad_xml = tmp_path / "bad.xml"
    bad_xml.write_text("<Graphs xmlns='https://poets-project.org/schemas/virtual-graph-schema-v2'><GraphType")
    return {"missing": tmp_path / "missing.xml", "bad_xml": bad_xml,
            "compile": variant("ring-oscillator-01.xml", "deviceState->counter = 0;", "deviceState->counter = nope;",
                               tmp_path, "compile.xml")}


@pytest.mark.parametrize("prog", ["psim", "pstack"])
def test_missing_file_and_bad_xml_exit_3_from_psim_and_pstack(prog: str, tmp_path: Path) -> None:
    apps = broken_apps(tmp_path)
    # pstack reads and checks the application before it talks to any Redis
    args, redis = (["run"], DEAD_REDIS) if prog == "pstack" else ([], None)
    assert_exits(command(prog, *args, str(apps["missing"]), redis_url=redis), status.GRAPH, prog, "missing.xml")
    assert_exits(command(prog, *args, str(apps["bad_xml"]), redis_url=redis), status.GRAPH, prog, "malformed XML")


def test_compile_error_exits_4_from_psim(tmp_path: Path) -> None:
    assert_exits(command("psim", "-q", str(broken_apps(tmp_path)["compile"])), status.BUILD, "psim", "compile error")


@pytest.mark.fleet
def test_compile_error_exits_4_from_pstack_run_on_the_embedded_stack(tmp_path: Path) -> None:
    """On the fleet the compile error fails a region: the process record carries its family."""
    app = broken_apps(tmp_path)["compile"]
    p = command("pstack", "run", "--rmap", '{"n1": 1}', str(app))
    assert_exits(p, status.BUILD, "pstack", "compile error in device type")
    assert "process 1 failed: region " in p.stderr


@pytest.mark.parametrize("prog, args", [("psim", ["--rmap", '{"n1": 1}', RING]), ("pstack", ["run", RING]),
                                        ("pstack", ["ps"]), ("pcli", ["-q"])])
def test_unreachable_redis_exits_5(prog: str, args: list[str]) -> None:
    assert_exits(command(prog, *args, redis_url=DEAD_REDIS), status.ENVIRONMENT, prog,
                 f"cannot reach Redis at {DEAD_REDIS}")


@pytest.mark.parametrize("prog, args", [("psim", ["--no-such-flag", RING]), ("psim", []),
                                        ("pstack", ["run", "--no-such-flag", RING]), ("pstack", ["nonsense"]),
                                        ("pcli", ["--no-such-flag"])])
def test_usage_errors_exit_2(prog: str, args: list[str]) -> None:
    p = command(prog, *args)
    assert p.returncode == status.USAGE and f"Usage: {prog} " in p.stderr, p.stderr


def test_a_reader_that_goes_away_stops_psim_quietly_with_141(tmp_path: Path) -> None:
    """``psim app.xml | head -c 100``: the handler log lines meet a closed pipe; psim stops, its
    engine stopped, with no traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PSTACK_")}
    script = Path(sys.executable).parent / "psim"
    lines = "import subprocess, sys\n" \
        "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)\n" \
        "p.stdout.read(100); p.stdout.close()\n" \
        "err = p.stderr.read(); print(p.wait()); print(err.decode())"
    app = tmp_path / "chatty.xml"
    chatty = 'handler_log(1, "got %u", deviceState->counter);'
    app.write_text(token_ring(200, 500, on_receive_extra=chatty))  # 100,000 log lines
    p = subprocess.run([sys.executable, "-c", lines, str(script), str(app)], capture_output=True, text=True,
                       timeout=180, env=env)
    code, _, err = p.stdout.partition("\n")
    assert int(code) == status.BROKEN_PIPE, p.stdout
    assert "Traceback" not in err and err.strip() == "", err
