"""Start-up: what ``psim`` imports, finding a cached engine without rendering, and the embedded
stack's stop.  The speed itself is measured in bench/startup_bench.py, never here."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pstack_tasks.memo import BoundedCache
from pstack_tasks.native import engine_index
from pstack_tasks.native.prepare import prepare
from support.apps import variant
from support.paths import PSTACK

RING = PSTACK / "ring-oscillator-01.xml"
#: what a psim run on a cached engine must not import (each costs more than a small run)
HEAVY = ("celery", "kombu", "redis", "rich", "ptpython", "prompt_toolkit", "jinja2", "click", "cachetools",
         "importlib.metadata", "pkg_resources", "ctypes", "filelock", "platformdirs")

PROBE = """
import sys
from pstack_tasks.ui.cli import psim
try:
    psim.main(sys.argv[1:])
except SystemExit as e:
    assert not e.code, e.code
print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in HEAVY or m in HEAVY)), file=sys.stderr)
"""


def _imported_by_psim(cache: Path, *args: str) -> tuple[list[str], str]:
    code = f"import json\nHEAVY = {HEAVY!r}\n" + PROBE
    env = dict(os.environ, PSTACK_CACHE_DIR=str(cache))
    env.pop("PSTACK_REDIS_URL", None)
    p = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stderr.strip().splitlines()[-1]), p.stdout


def test_psim_on_a_cached_engine_imports_nothing_heavy(tmp_path: Path) -> None:
    first, _ = _imported_by_psim(tmp_path, "-q", "-r", str(RING))  # builds: renders with jinja2
    assert "jinja2" in first
    again, out = _imported_by_psim(tmp_path, "-q", "-r", str(RING))
    assert again == []
    assert json.loads(out)["metrics"]["Delivered messages"] == 40


def test_the_index_finds_the_engine_a_render_builds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PSTACK_CACHE_DIR", str(tmp_path))
    built = prepare(RING)
    entries = list((tmp_path / "engine-index").iterdir())
    assert len(entries) == 1
    found = engine_index.engine_for(built.app.graph_type)
    assert (found.engine, found.type_hash) == (built.engine, built.type_hash)


def test_a_changed_handler_is_a_new_index_key_and_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PSTACK_CACHE_DIR", str(tmp_path / "cache"))
    changed = variant("ring-oscillator-01.xml", "deviceState->counter = 0;", "deviceState->counter = 0; ;",
                      tmp_path, "changed.xml")
    a, b = prepare(RING), prepare(changed)
    assert engine_index.index_key(a.app.graph_type) != engine_index.index_key(b.app.graph_type)
    assert a.engine != b.engine and a.type_hash != b.type_hash


def test_the_same_type_in_another_file_shares_the_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PSTACK_CACHE_DIR", str(tmp_path / "cache"))
    copy = tmp_path / "copy.xml"
    copy.write_bytes(RING.read_bytes())
    assert engine_index.index_key(prepare(RING).app.graph_type) == engine_index.index_key(prepare(copy).app.graph_type)


def test_an_entry_whose_engine_was_removed_rebuilds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PSTACK_CACHE_DIR", str(tmp_path))
    first = prepare(RING)
    shutil.rmtree(first.engine.parent)  # the engine cache cleaned, the index left
    again = prepare(RING)
    assert again.engine.is_file() and again.type_hash == first.type_hash


def test_a_damaged_entry_is_a_miss(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PSTACK_CACHE_DIR", str(tmp_path))
    first = prepare(RING)
    (entry,) = (tmp_path / "engine-index").iterdir()
    entry.write_text("garbage")
    assert prepare(RING).engine == first.engine
    assert entry.read_text().split()[1] == first.type_hash


def test_bounded_cache_drops_the_least_recently_used() -> None:
    cache: BoundedCache[str, int] = BoundedCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # now b is the least recently used
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
