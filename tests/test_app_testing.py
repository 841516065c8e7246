"""Testing applications (docs/testing.md): checker files, `pstack test`, the pytest plugin, pcli's unit().

pstack's own checker files (the shared data's pstack-tests/checks/) are read where they are and
must pass unmodified, on the embedded stack and on a fleet, in 1, 2 and 3 regions.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from pstack_tasks.fleet.app_pairs import find_apps, select
from pstack_tasks.fleet.app_runs import splits
from pstack_tasks.fleet.app_view import AppView
from pstack_tasks.fleet.checkers import CheckerFileError, apply, load_checkers
from pstack_tasks.graph import loader
from support.commands import bare_env, pstack
from support.fleet import WorkerFleet
from support.paths import CORPUS, PSTACK, SHARED_DATA

PSTACK_TESTS = SHARED_DATA / "pstack-tests"
REPO = Path(__file__).resolve().parent.parent
APPS = REPO / "apps"
RING_CHECKS = (PSTACK_TESTS / "checks" / "ring-oscillator-01.py").read_text()


def _app(where: Path, name: str, checks: str, xml: Path = PSTACK / "ring-oscillator-01.xml") -> Path:
    """An application under test in ``where``: a copy of ``xml`` named ``name`` and its checker file."""
    where.mkdir(parents=True, exist_ok=True)
    shutil.copy(xml, where / f"{name}.xml")
    (where / f"{name}.py").write_text(checks)
    return where / f"{name}.xml"


# --- checker files, without a fleet ----------------------------------------------------------------

def test_both_layouts_pair_an_application_with_its_checker_file(tmp_path: Path) -> None:
    shared = find_apps([PSTACK_TESTS])
    assert sorted((a.name, a.py.parent.name) for a in shared) == [
        ("basic-01", "checks"), ("basic-02", "checks"), ("ring-oscillator-01", "checks")]
    _app(tmp_path, "ring", RING_CHECKS)
    shutil.copy(PSTACK / "basic-01.xml", tmp_path / "lonely.xml")  # no checker file: not under test
    assert [a.name for a in find_apps([tmp_path])] == ["ring"]
    assert [a.name for a in select(find_apps([APPS]), "RING")] == ["ring-oscillator-01"]
    with pytest.raises(Exception, match=r"lonely.xml: no checker file lonely.py beside it"):
        find_apps([tmp_path / "lonely.xml"])


def test_checks_are_check_functions_when_there_are_any_else_every_public_function_of_one_argument(
        tmp_path: Path) -> None:
    plain = tmp_path / "plain.py"
    plain.write_text("from os.path import basename\n"
                     "def delivered(r):\n    'Delivered messages.'\n    assert r['n'] == 1\n"
                     "def _private(r):\n    pass\n"
                     "def helper(a, b):\n    pass\n"
                     "def per_device(r, app):\n    assert len(app) == 4\n")
    checks = load_checkers(plain)
    assert [(c.name, c.doc, c.wants_app) for c in checks] == [
        ("delivered", "Delivered messages", False), ("per_device", "per_device", True)]
    prefixed = tmp_path / "prefixed.py"
    prefixed.write_text("def check_a(r):\n    pass\ndef check_b(r, application):\n    pass\n"
                        "def expected(n):\n    return n\n")
    assert [(c.doc, c.wants_app) for c in load_checkers(prefixed)] == [("a", False), ("b", True)]


def test_a_broken_checker_file_is_one_line_naming_file_and_line(tmp_path: Path) -> None:
    cases = {"syntax": ("def check_a(r):\n    pass\ndef check_b(r)\n    pass\n",
                        r"syntax.py:3: syntax error in the checker file: expected ':'$"),
             "imports": ("import os\nimport no_such_module_here\n",
                         r"imports.py:2: the checker file fails on import: ModuleNotFoundError: "),
             "arity": ("def check_a(r, app, more):\n    pass\n", r"arity.py:1: check_a takes 3 arguments"),
             "none": ("X = 1\n", r"none.py: no checks: ")}
    for name, (text, message) in cases.items():
        (tmp_path / f"{name}.py").write_text(text)
        with pytest.raises(CheckerFileError, match=message) as e:
            load_checkers(tmp_path / f"{name}.py")
        assert "\n" not in str(e.value)


def test_every_check_runs_and_a_failure_says_why_and_where(tmp_path: Path) -> None:
    py = tmp_path / "c.py"
    py.write_text("def check_message(r):\n    assert r['n'] == 2, f\"n is {r['n']}\"\n"
                  "def check_bare(r):\n    assert r['n'] == 2\n"
                  "def check_key(r):\n    return r['missing']\n"
                  "def check_false(r):\n    return False\n"
                  "def check_ok(r):\n    assert r['n'] == 1\n")
    out = apply(load_checkers(py), {"n": 1}, None)
    assert [(o.name, o.passed, o.message) for o in out] == [
        ("check_message", False, "n is 1 [c.py:2]"),
        ("check_bare", False, "failed: assert r['n'] == 2 [c.py:4]"),
        ("check_key", False, "KeyError: 'missing' [c.py:6]"),
        ("check_false", False, "returned False"),
        ("check_ok", True, "")]


def test_the_application_view_gives_devices_types_and_properties() -> None:
    ising = AppView(loader.load(str(CORPUS / "ising_spin_fix_3_1.xml")))
    assert len(ising) == 10 and ising.devices_of("exit_node") == ["f"] and ising.type_of("n_1_2") == "cell"
    assert ising.properties("f")["fanin"] == 9
    assert ising.properties("n_2_1") == {"x": 2, "y": 1, "ref_final_spin": 1}
    clock = AppView(loader.load(str(CORPUS / "clock_tree_3_2_10.xml")))
    assert clock.graph_properties["max_ticks"] == 10 and clock.edges == 28
    with pytest.raises(TypeError):
        clock.graph_properties["max_ticks"] = 3  # type: ignore[index]
    with pytest.raises(KeyError, match="no device 'nope'"):
        clock.properties("nope")


def test_region_splits_are_seeded_and_use_every_region() -> None:
    devices = [f"d{i}" for i in range(10)]
    first = splits(devices, 3, seed=7, name="app")
    assert [s.regions for s in first] == [1, 2, 3, 4]
    assert first == splits(devices, 3, seed=7, name="app")
    assert first != splits(devices, 3, seed=8, name="app")
    for s in first[1:]:
        assert set(s.rmap.values()) | {0} == set(range(s.regions))
        assert sum(1 for d in devices if s.rmap.get(d, 0) == 0) >= 1
    assert [s.regions for s in splits(["a", "b"], 2, 0, "x")] == [1, 2]  # never more regions than devices


def test_usage_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    p = pstack("test", str(tmp_path / "nowhere"), env=bare_env())
    assert (p.returncode, p.stderr.strip()) == (2, f"pstack test: error: {tmp_path / 'nowhere'}: "
                                                  "no such file or directory")
    p = pstack("test", str(tmp_path), env=bare_env())
    assert p.returncode == 2 and p.stderr.startswith(f"pstack test: error: no applications to test in {tmp_path}")
    _app(tmp_path, "ring", RING_CHECKS)
    p = pstack("test", "--engine", "python", str(tmp_path), env=bare_env())
    assert p.returncode == 2
    assert p.stderr.strip() == ("pstack test: error: --engine python: unknown engine type 'python'; "
                                "known: dummy, psim")


def test_the_pytest_plugin_costs_nothing_when_not_asked(tmp_path: Path) -> None:
    (tmp_path / "test_alone.py").write_text("import sys\n\ndef test_alone():\n"
                                            "    assert 'pstack_tasks' not in sys.modules\n")
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                       capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    p = subprocess.run([sys.executable, "-m", "pytest", "--help"], capture_output=True, text=True, timeout=120)
    assert "--pstack-apps=DIR" in p.stdout


# --- on the embedded stack and on a fleet ----------------------------------------------------------

def _rows(stdout: str) -> list[tuple[str, str, str, str]]:
    """(app, engine, regions, result) of each table row of pstack test's plain-text output."""
    return [tuple(line.split()[:4]) for line in stdout.splitlines()  # type: ignore[misc]
            if re.match(r"^\S+\s+\S+\s+(\d+|-)\s+(PASS|FAIL|ERROR)\b", line)]


@pytest.mark.fleet
def test_pstacks_checker_files_pass_unmodified_on_the_embedded_stack(tmp_path: Path) -> None:
    junit = tmp_path / "report.xml"
    p = pstack("test", str(PSTACK_TESTS), "--junit", str(junit), env=bare_env(), timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    assert sorted(_rows(p.stdout)) == [
        ("basic-01", "psim", "1", "PASS"), ("basic-01", "psim", "2", "PASS"),
        ("basic-02", "psim", "1", "PASS"), ("basic-02", "psim", "2", "PASS"),
        ("ring-oscillator-01", "psim", "1", "PASS"), ("ring-oscillator-01", "psim", "2", "PASS"),
        ("ring-oscillator-01", "psim", "3", "PASS")]
    assert p.stdout.splitlines()[-1].startswith("pstack test: 7 passed, 0 failed, 0 errors (3 apps, engines psim)")
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("7", "0", "0")


def test_on_a_fleet_a_failing_check_exits_1_naming_check_app_engine_and_split(
        tmp_path: Path, on_fleet: WorkerFleet) -> None:
    for xml in PSTACK_TESTS.glob("*.xml"):  # pstack's layout, unmodified files
        shutil.copy(xml, tmp_path / xml.name)
    shutil.copytree(PSTACK_TESTS / "checks", tmp_path / "checks")
    _app(tmp_path / "more", "wrong", RING_CHECKS.replace("== 40", "== 41"))
    _app(tmp_path / "more", "broken", "def check_a(r):\n    return (\n")
    junit = tmp_path / "report.xml"
    env = dict(os.environ)  # the fleet's PSTACK_REDIS_URL and PSTACK_KEY_PREFIX; psim and dummy online
    p = pstack("test", str(tmp_path), "--junit", str(junit), "--jobs", "2", env=env, timeout=600)
    assert p.returncode == 1, p.stdout + p.stderr
    rows = _rows(p.stdout)
    assert {r[1] for r in rows} == {"psim", "-"}  # dummy runs no application: not tested by default
    assert sorted(r for r in rows if r[0] != "wrong" and r[0] != "broken") == [
        ("basic-01", "psim", "1", "PASS"), ("basic-01", "psim", "2", "PASS"),
        ("basic-02", "psim", "1", "PASS"), ("basic-02", "psim", "2", "PASS"),
        ("ring-oscillator-01", "psim", "1", "PASS"), ("ring-oscillator-01", "psim", "2", "PASS"),
        ("ring-oscillator-01", "psim", "3", "PASS")]
    assert sorted(r for r in rows if r[0] == "wrong") == [("wrong", "psim", n, "FAIL") for n in "123"]
    assert [r for r in rows if r[0] == "broken"] == [("broken", "-", "-", "ERROR")]
    fails = [line for line in p.stdout.splitlines() if line.startswith(("FAIL ", "ERROR "))]
    assert ("FAIL wrong[psim-1] (psim, 1 region): Check number of delivered messages: "
            "failed: assert results[\"metrics\"][\"Delivered messages\"] == 41 [wrong.py:3]") in fails
    assert any(re.match(r'FAIL wrong\[psim-3\] \(psim, 3 regions, rmap \{"n\d": [12], ', f) for f in fails)
    assert [f for f in fails if f.startswith("ERROR")] == [
        f"ERROR broken: {tmp_path / 'more' / 'broken.py'}:2: syntax error in the checker file: '(' was never closed"]
    assert "Traceback" not in p.stdout + p.stderr
    assert p.stdout.splitlines()[-1].startswith("pstack test: 7 passed, 3 failed, 1 errors (5 apps, engines psim)")
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    assert len(cases) == 11 and cases["broken"].find("error") is not None
    failure = cases["wrong[psim-2]"].find("failure")
    assert failure is not None and "Check number of delivered messages" in (failure.get("message") or "")
    assert all(cases[f"ring-oscillator-01[psim-{n}]"].find("failure") is None for n in "123")
    p = pstack("test", str(tmp_path), "--engine", "python", env=env)
    assert p.returncode == 2 and p.stderr.startswith("pstack test: error: --engine python: no engine worker")


def test_pytest_plugin_reports_the_same_passes_and_failures(tmp_path: Path, on_fleet: WorkerFleet) -> None:
    apps = tmp_path / "apps"
    _app(apps, "ring", RING_CHECKS)
    _app(apps, "wrong", RING_CHECKS.replace("== 40", "== 41"))
    env = dict(os.environ)  # the fleet's
    p = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", "--pstack-apps", str(apps),
                        "--pstack-engine", "psim", "--junitxml", str(tmp_path / "j.xml")],
                       capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert p.returncode == 1, p.stdout + p.stderr
    outcomes = {name: verdict for verdict, name in re.findall(r"^(PASSED|FAILED) \S+::(\S+)", p.stdout, re.M)}
    assert outcomes == {**{f"ring[psim-{n}]": "PASSED" for n in "123"},
                        **{f"wrong[psim-{n}]": "FAILED" for n in "123"}}
    assert "FAIL Check number of delivered messages: failed: assert" in p.stdout
    assert "6 passed" not in p.stdout and "3 failed, 3 passed" in p.stdout
    p = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--pstack-apps", str(apps),
                        "--pstack-engine", "psim", "-k", "ring and 2"],
                       capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert p.returncode == 0 and "1 passed, 5 deselected" in p.stdout, p.stdout


def test_unit_runs_the_documented_example_and_checks_a_result_without_running(on_fleet: WorkerFleet) -> None:
    from pstack_tasks.fleet.client import ps, run
    from pstack_tasks.ui.shell.apps import unit
    cwd = os.getcwd()
    os.chdir(REPO)  # docs/pcli.md's example runs from the repository root
    try:
        report = unit("apps/ring-oscillator-01.py")
        assert [r["passed"] for r in report] == [True] * 4
        assert str(report).splitlines()[-1] == "ring-oscillator-01.xml: 4/4 passed"
        result = run("apps/ring-oscillator-01.xml", rmap={"n1": 1, "n2": 2})
        before = len(ps(limit=1000))
        again = unit("apps/ring-oscillator-01.xml", result)
        assert len(ps(limit=1000)) == before  # nothing ran
        assert [r["check"] for r in again] == ["Every node receives one toggle per lap",
                                               "Every node counted ten laps and is back in its first state",
                                               "The root node ends the run with handler_exit(0)"]
        wrong = dict(result, metrics={**result["metrics"], "Exit code": 1})
        assert [r["passed"] for r in unit(PSTACK_TESTS / "checks" / "ring-oscillator-01.py", wrong)] == [
            True, True, False]
    finally:
        os.chdir(cwd)


def test_the_pytest_plugin_collects_app_items_and_a_broken_checker_file_in_one_line(tmp_path: Path) -> None:
    apps = tmp_path / "apps"
    _app(apps, "ring", RING_CHECKS)
    _app(apps, "broken", "def check_a(r):\n    return (\n")
    p = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q",
                        "--pstack-apps", str(apps), "--continue-on-collection-errors"],
                       capture_output=True, text=True, cwd=tmp_path, env=bare_env(), timeout=120)
    assert "apps/ring.xml::ring[psim-1]" in p.stdout and "apps/ring.xml::ring[psim-3]" in p.stdout
    assert f"{apps / 'broken.py'}:2: syntax error in the checker file: '(' was never closed" in p.stdout
    assert "Traceback" not in p.stdout
