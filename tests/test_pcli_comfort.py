"""pcli's comforts in a real terminal (tmux) on the fleet: bare-name shortcuts, one-line errors,
Ctrl-C while run() waits, flush(), and plain-data variables kept between sessions."""
from __future__ import annotations

from pathlib import Path

from test_pcli import PCLI, RING, terminal_env

from pstack_tasks.ui.shell.comfort import bare_call, is_plain, load_variables, save_variables, variables_path
from support.fleet import WorkerFleet
from support.terminal import Terminal, tmux_servers


def test_bare_names_run_only_while_they_are_the_builtins() -> None:
    def ps() -> None: ...
    builtins = {"ps": ps, "pp": print}
    assert bare_call("ps", {"ps": ps}, builtins) == "ps()"
    assert bare_call("  ps ", {"ps": ps}, builtins) == "ps()"
    assert bare_call("ps", {"ps": 3}, builtins) == "ps"  # the user's own ps
    assert bare_call("pp", {"pp": print, "_": 1}, builtins) == "pp(_)"
    assert bare_call("x", {"x": 1}, builtins) == "x"


def test_only_plain_data_is_kept_between_sessions(tmp_path: Path) -> None:
    assert variables_path({"XDG_STATE_HOME": "/s"}) == Path("/s/pstack-celery/pcli_variables.json")
    assert is_plain({"a": [1, 2.5, "x", None, True, (1, 2)]}) and not is_plain({"a": object()})
    assert not is_plain({1: "int key"}) and not is_plain(float("nan")) and not is_plain(len)
    path = tmp_path / "v.json"
    kept = save_variables({"n": 3, "rmap": {"n1": 1}, "_hidden": 1, "f": object(), "ps": [1], "mod": Path},
                          path, skip={"ps": None})
    assert kept == ["n", "rmap"]
    ns: dict[str, object] = {"n": "the session's own"}
    assert load_variables(ns, path) == ["rmap"] and ns == {"n": "the session's own", "rmap": {"n1": 1}}
    path.write_text("{not json")
    assert load_variables({}, path) == []


def test_shortcuts_errors_interrupts_flush_and_kept_variables(tmp_path: Path, on_fleet: WorkerFleet) -> None:
    env = terminal_env(tmp_path, on_fleet)
    with Terminal([*PCLI, "-n"], env) as t:
        t.wait_for(r"^pcli>")
        t.send("ps")
        t.wait_for(r"^ *PID +STATE +REC +USER +ENGINE")
        t.send("engines")
        t.wait_for(r"^TYPE +NAME +SLOTS +BUSY")
        t.send("status(987654)")
        t.wait_for(r"^ProcessNotFound: no process 987654 \(unknown, or its record has expired\)$")
        assert "Traceback" not in t.screen()
        t.send(f'done = run("{RING}")["pid"]')
        t.send("done")
        done = int(t.wait_for(r"^(\d+)$", timeout=60).group(1))
        t.send(f'run("{RING}", engine="dummy", options={{"seconds": 60}})')
        pid = int(t.wait_for(rf"process (?!{done}\b)(\d+) Running").group(1))
        t.keys("C-c")
        t.wait_for(rf"^KeyboardInterrupt: process {pid} goes on; block\({pid}\) waits for it again, "
                   rf"kill\({pid}\) stops it$")
        t.send(f"status({pid})['state']")
        t.wait_for(r"^'Running'$")
        t.send(f"kill({pid})")
        t.wait_for(r"^'Killed'$")
        t.send(f"gone = flush(); done in gone and {pid} in gone")
        t.send("done in gone")
        t.wait_for(r"^True$")
        t.send("status(done)")
        t.wait_for(r"^ProcessNotFound: no process \d+ ")
        t.send('kept = {"rmap": {"n1": 1}, "sizes": [1, 2.5]}; f = run("' + RING + '", async_=True)')
        t.send("kept")
        t.send("pp")
        t.wait_for(r"^\{'rmap': \{'n1': 1\}, 'sizes': \[1, 2\.5\]\}$")
        t.send("exit()")
        assert t.wait_exit() == 0
    with Terminal([*PCLI, "-n"], env) as t:
        t.wait_for(r"^variables kept from the last session: done, gone, kept$")
        t.send("kept['sizes'], 'f' in dir()")
        t.wait_for(r"^\(\[1, 2\.5\], False\)$")
        t.send("exit()")
        assert t.wait_exit() == 0
    assert tmux_servers() == []
