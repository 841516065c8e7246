"""The wheel is complete on its own: built without setuptools warnings, installed into a fresh
virtualenv, its commands work from any directory, and a worker-only install needs no terminal
libraries.

Dependencies are not downloaded: the fresh virtualenv (no system site-packages) gets the wheel
itself with ``--no-deps``, and its third-party dependencies through a ``.pth`` file naming a
directory of links to this environment's installed distributions, *minus* pstack-celery (the
editable install of this tree), the terminal libraries and Flower.  So every file of
pstack_tasks, engines, templates and celeryconfig comes from the wheel, which the tests check.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from support.paths import PSTACK

ROOT = Path(__file__).resolve().parent.parent
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*.pyc",
                                    ".pytest_cache", ".mypy_cache", ".ruff_cache", "out")
#: left out of the dependency directory: this tree's own install, and the optional extras
NOT_DEPENDENCIES = re.compile(r"^(__editable__|pstack_celery|ptpython|prompt_toolkit|rich|flower)|\.pth$|^__pycache__$",
                              re.I)
#: pip's notes about this machine's pip configuration (index locations), not from the build
PIP_LOCATION_NOTE = re.compile(r"^\s*WARNING: Location '.*' is ignored", re.M)


def run(cmd: list[str | Path], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=240)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path]:
    """(wheel, build output, copy of the source tree it was built from)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=NOT_SOURCE)
    # PYTHONDONTWRITEBYTECODE makes setuptools say "warning: byte-compiling is disabled": a
    # choice of this environment, not of the package
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    p = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", tmp / "dist", src], cwd=tmp, env=env)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    (wheel,) = (tmp / "dist").glob("pstack_celery-*.whl")
    return wheel, p.stdout + p.stderr, src


@pytest.fixture(scope="module")
def venv(built: tuple[Path, str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv holding the wheel, with the core dependencies only."""
    tmp = tmp_path_factory.mktemp("venv")
    env_dir = tmp / "env"
    p = run([sys.executable, "-m", "venv", "--without-pip", env_dir], cwd=tmp)
    assert p.returncode == 0, p.stderr
    python = env_dir / "bin" / "python"
    p = run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", built[0]], cwd=tmp)
    assert p.returncode == 0, p.stdout + p.stderr
    deps = tmp / "deps"
    deps.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not NOT_DEPENDENCIES.search(entry.name):
            (deps / entry.name).symlink_to(entry)
    site = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp).stdout.strip()
    Path(site, "dependencies.pth").write_text(f"{deps}\n")
    return env_dir


def in_venv(env_dir: Path, cmd: list[str | Path], cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PSTACK_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(PATH=f"{env_dir / 'bin'}:{env['PATH']}", **extra)
    return run(cmd, cwd=cwd, env=env)


def test_the_build_says_no_warning(built: tuple[Path, str, Path]) -> None:
    output = PIP_LOCATION_NOTE.sub("", built[1])
    assert "running bdist_wheel" in output  # the build's own log is in it
    warnings = [line for line in output.splitlines() if re.search(r"warn", line, re.I)]
    assert warnings == []


def test_the_wheel_holds_every_file_of_the_package_trees(built: tuple[Path, str, Path]) -> None:
    wheel, _, src = built
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {"celeryconfig.py", "pstack_pytest.py", "pstack_tasks/py.typed"}
    for tree, installed_as in (("pstack_tasks", "pstack_tasks"), ("engines", "engines"),
                               ("templates", "pstack_tasks/templates")):
        expected |= {f"{installed_as}/{f.relative_to(src / tree).as_posix()}"
                     for f in (src / tree).rglob("*") if f.is_file()}
    assert expected - names == set()
    assert any(n.startswith("engines/psim/runtime/") and n.endswith(".hpp") for n in names)


def test_the_installed_commands_run_from_another_directory(venv: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"  # a cold engine cache: psim compiles with the installed runtime and template
    for prog in ("psim", "pstack", "pcli"):
        p = in_venv(venv, [prog, "--version"], cwd=tmp_path)
        assert p.returncode == 0 and p.stdout.strip() == f"{prog} 0.1.0", p.stderr
    p = in_venv(venv, ["psim", "-q", str(PSTACK / "ring-oscillator-01.xml")], cwd=tmp_path, PSTACK_CACHE_DIR=str(cache))
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[:2] == ["Metric [Delivered messages]: 40", "Metric [Exit code]: 0"]
    assert list(cache.glob("engines/*/engine"))
    where = in_venv(venv, ["python", "-c", "import pstack_tasks, engines.psim, celeryconfig; "
                           "from pstack_tasks.native import engine_inputs as e; "
                           "print(pstack_tasks.__file__, engines.psim.__file__, celeryconfig.__file__, "
                           "e.RUNTIME_DIR, e.templates_dir())"], cwd=tmp_path)
    assert where.returncode == 0, where.stderr
    assert all(path.startswith(str(venv)) for path in where.stdout.split()), where.stdout


def test_a_worker_only_install_runs_workers_and_names_the_extra_for_pcli(venv: Path, tmp_path: Path) -> None:
    p = in_venv(venv, ["python", "-c", "import pstack_tasks.celery_app, pstack_tasks.worker.tasks, "
                       "pstack_tasks.worker.membership, pstack_tasks.worker.flower_tasks"], cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    p = in_venv(venv, ["pcli", "-q"], cwd=tmp_path)
    assert p.returncode == 5
    assert p.stderr.strip() == ("pcli: error: pcli needs ptpython, prompt_toolkit, rich, which this installation "
                                "lacks: pip install 'pstack-celery[shell]'")


def test_pip_install_target(built: tuple[Path, str, Path], tmp_path: Path) -> None:
    target = tmp_path / "target"
    p = run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", target, built[0]],
            cwd=tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    env = {**os.environ, "PYTHONPATH": str(target)}
    p = run([sys.executable, "-m", "pstack_tasks.ui.cli.psim", "-q", "--no-states", str(PSTACK / "basic-01.xml")],
            cwd=tmp_path, env=env)
    assert p.returncode == 0 and "Metric [Delivered messages]: 10" in p.stdout, p.stderr
    where = "import pstack_tasks.native.engine_inputs as e; print(e.RUNTIME_DIR, e.templates_dir())"
    p = run([sys.executable, "-c", where], cwd=tmp_path, env=env)
    assert all(path.startswith(str(target)) for path in p.stdout.split()), p.stdout + p.stderr
