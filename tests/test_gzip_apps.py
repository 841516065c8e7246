"""Application files may be gzip-compressed: an ``.xml.gz`` is read as it is wherever a user names
an application file (psim, run/submit on a fleet, ``pstack test``, pcli, the Python API), with the
results, the caches and the one-line error messages of the plain file.

Every compressed file here is written by the test (Python's gzip) from a plain one.
"""
from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from pstack_tasks.exceptions import GraphError
from pstack_tasks.fleet.app_pairs import find_apps
from pstack_tasks.graph import loader
from pstack_tasks.graph.app_file import app_name, read_text, size_hint
from pstack_tasks.native import instance_loader
from pstack_tasks.ui.cli import exit_status
from support.paths import CORPUS, KEY_PREFIX, PSTACK

ROOT = Path(__file__).resolve().parent
GALS = CORPUS / "gals_heat_fix_8_20.xml"
RING = PSTACK / "ring-oscillator-01.xml"
PSIM = [sys.executable, "-m", "pstack_tasks.ui.cli.psim"]


def gzipped(src: Path | str, dst: Path) -> Path:
    """``dst``, a gzip copy of ``src`` (a file, or XML text)."""
    data = Path(src).read_bytes() if isinstance(src, Path) else src.encode()
    with gzip.open(dst, "wb") as f:
        f.write(data)
    return dst


def psim(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PSIM, *args], capture_output=True, text=True, timeout=300, env=env)


def big_ring(path: Path) -> Path:
    """A ring of 12000 devices (over the native loader's 1 MiB) no cache has seen."""
    with open(path, "w") as f:
        subprocess.run([sys.executable, str(ROOT.parent / "bench" / "ring.py"), "12000", "3"], stdout=f, check=True)
        f.write(f"<!-- {uuid.uuid4()} -->\n")
    return path


# --- psim ------------------------------------------------------------------------------------------

def test_psim_prints_for_a_gz_copy_exactly_what_it_prints_for_the_plain_file(tmp_path: Path) -> None:
    packed = gzipped(GALS, tmp_path / "gals.xml.gz")
    plain, compressed = psim("-q", str(GALS)), psim("-q", str(packed))
    assert plain.returncode == compressed.returncode == 0, compressed.stderr
    assert compressed.stdout == plain.stdout and "Delivered messages]: 3420" in plain.stdout


def test_psim_splits_a_gz_copy_in_two_regions_as_it_splits_the_plain_file(tmp_path: Path, redis_url: str) -> None:
    packed = gzipped(GALS, tmp_path / "gals.xml.gz")
    env = dict(os.environ, PSTACK_REDIS_URL=redis_url, PSTACK_KEY_PREFIX=KEY_PREFIX)
    plain, compressed = (psim("-q", "--regions", "2", str(p), env=env) for p in (GALS, packed))
    assert plain.returncode == compressed.returncode == 0, compressed.stderr
    assert compressed.stdout == plain.stdout and "Delivered messages]: 3420" in plain.stdout
    assert "psim: 2 regions" in compressed.stderr
    ring = big_ring(tmp_path / "ring.xml")  # over 1 MiB: packed by the native loader, then split
    plain, compressed = (psim("-q", "-d", "--regions", "2", str(p), env=env)
                         for p in (ring, gzipped(ring, tmp_path / "ring.xml.gz")))
    assert plain.returncode == compressed.returncode == 0, compressed.stderr[-2000:]
    assert compressed.stdout == plain.stdout and "Delivered messages]: 36000" in plain.stdout
    assert "phase native pack" in compressed.stderr


def test_a_big_gz_is_packed_by_the_native_loader_and_its_second_run_hits_the_cache(tmp_path: Path) -> None:
    ring = big_ring(tmp_path / "ring.xml")
    packed = gzipped(ring, tmp_path / "ring.xml.gz")
    assert packed.stat().st_size < instance_loader.MIN_BYTES <= size_hint(packed) == ring.stat().st_size
    native = dict(os.environ, PSTACK_NATIVE_LOADER="1")
    # the third run parses again (-t keeps its instance files: no warm start) and hits the parsed-instance cache
    runs = [psim("-q", "-r", "-d", *more, str(packed), env=native) for more in ([], [], ["-t", str(tmp_path / "t")])]
    assert [r.returncode for r in runs] == [0, 0, 0], runs[0].stderr[-2000:]
    cold, warm, hit = runs
    assert "phase native pack" in cold.stderr and "read by the Python loader" not in cold.stderr
    assert "warm start:" in warm.stderr and "phase load" not in warm.stderr  # no parse at all (native/warm_run.py)
    assert "phase content hash" in hit.stderr and "phase native pack" not in hit.stderr
    plain = psim("-q", "-r", str(ring), env=dict(os.environ, PSTACK_NATIVE_LOADER="0"))
    results = [json.loads(r.stdout) for r in (cold, warm, hit, plain)]
    assert all(r["states"] == results[0]["states"] for r in results) and len(results[0]["states"]) == 12000
    assert {r["metrics"]["Delivered messages"] for r in results} == {36000}


def test_the_native_and_python_loaders_pack_a_gz_as_they_pack_the_plain_file(tmp_path: Path) -> None:
    packed = gzipped(GALS, tmp_path / "gals.xml.gz")
    native = instance_loader.load(str(packed), min_bytes=0)
    python = loader.load(str(packed))
    assert native.instance.packed is not None and python.instance.packed is None
    plain = loader.load(str(GALS))
    assert native.instance.names == python.instance.names == plain.instance.names
    assert list(native.instance.edges) == list(python.instance.edges) == list(plain.instance.edges)
    assert python.instance.props == plain.instance.props and python.instance.state == plain.instance.state


# --- errors ------------------------------------------------------------------------------------------

def test_an_error_in_a_gz_names_the_file_and_the_line_of_the_xml(tmp_path: Path) -> None:
    lines = GALS.read_text().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if "<DevI " in line) + 40
    lines[at] = lines[at].replace('type="', 'type="no_such_', 1)
    bad = tmp_path / "bad.xml"
    bad.write_text("".join(lines))
    packed = gzipped(bad, tmp_path / "bad.xml.gz")
    plain, compressed = psim("-q", str(bad)), psim("-q", str(packed))
    assert plain.returncode == compressed.returncode == exit_status.GRAPH
    assert plain.stderr.startswith(f"psim: error: {bad}:{at + 1}: ") and plain.stderr.count("\n") == 1
    assert compressed.stderr == plain.stderr.replace(str(bad), str(packed))
    with pytest.raises(GraphError) as native:  # the native loader refuses it; the Python loader names it
        instance_loader.load(str(packed), min_bytes=0)
    assert str(native.value) == compressed.stderr.strip().removeprefix("psim: error: ")


def _damaged(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Damaged compressed files, each with the reason the error names."""
    data = gzipped(GALS, tmp_path / "good.xml.gz").read_bytes()
    crc = bytearray(data)
    crc[-8] ^= 0xFF
    cases = {"truncated": (data[:len(data) // 2], "not a valid gzip file (truncated: it ends before the end of "
                                                  "the compressed data)"),
             "crc": (bytes(crc), "not a valid gzip file (CRC check failed)"),
             "text": (b"hello, world\n", "not a gzip file (it starts with 68 65, not 1f 8b) and not XML")}
    out = {}
    for name, (body, reason) in cases.items():
        path = tmp_path / f"{name}.xml.gz"
        path.write_bytes(body)
        out[name] = (path, reason)
    return out


def test_a_damaged_gz_or_a_non_gzip_named_gz_is_one_line_naming_the_file(tmp_path: Path) -> None:
    for name, (path, reason) in _damaged(tmp_path).items():
        p = psim("-q", str(path))
        assert (p.returncode, p.stdout, p.stderr) == (exit_status.GRAPH, "", f"psim: error: {path}: {reason}\n"), name
        with pytest.raises(GraphError) as e:
            instance_loader.load(str(path), min_bytes=0)
        assert str(e.value) == f"{path}: {reason}"


def test_a_corrupt_stream_is_named_as_such_wherever_it_is_damaged(tmp_path: Path) -> None:
    """A flipped bit anywhere past the header: the gzip damage is the error (never a traceback,
    never the malformed XML it may have decompressed into)."""
    data = gzipped(GALS, tmp_path / "good.xml.gz").read_bytes()
    path = tmp_path / "flipped.xml.gz"
    for at in range(20, len(data), max(1, len(data) // 60)):
        body = bytearray(data)
        body[at] ^= 0x10
        path.write_bytes(body)
        with pytest.raises(GraphError, match=r"flipped.xml.gz: not a valid gzip file \(") as e:
            loader.load(str(path))
        assert "\n" not in str(e.value)


def test_plain_xml_named_gz_is_read_as_xml_and_gzip_named_xml_as_gzip(tmp_path: Path) -> None:
    """Compression is told by the first bytes, not the name (a worker keeps the text a client
    sent under the name the user gave it)."""
    shutil.copy(GALS, tmp_path / "plain.xml.gz")
    gzipped(GALS, tmp_path / "packed.xml")
    expected = psim("-q", str(GALS)).stdout
    assert [psim("-q", str(tmp_path / n)).stdout for n in ("plain.xml.gz", "packed.xml")] == [expected, expected]


def test_gzip_bytes_and_a_gz_type_reference_are_read_too(tmp_path: Path) -> None:
    assert loader.load(gzip.compress(RING.read_bytes())).instance.names == loader.load(str(RING)).instance.names
    inst = CORPUS / "test_external_ping_pong_graph_inst_1.xml"
    text = inst.read_text()
    assert 'src="test_external_ping_pong_graph_type.xml"' in text
    (tmp_path / "inst.xml").write_text(text.replace('src="test_external_ping_pong_graph_type.xml"',
                                                    'src="type.xml.gz"'))
    gzipped(CORPUS / "test_external_ping_pong_graph_type.xml", tmp_path / "type.xml.gz")
    via_gz = loader.load(str(tmp_path / "inst.xml")).graph_type
    assert via_gz.file == str(tmp_path / "type.xml.gz")
    assert replace(via_gz, file="") == replace(loader.load(str(inst)).graph_type, file="")


def test_where_zlib_headers_are_missing_the_loader_builds_without_them_and_gz_goes_to_python(
        tmp_path: Path) -> None:
    """A compiler that finds no zlib.h (an include directory whose zlib.h is an #error, as a host
    without zlib1g-dev behaves): the loader is built without zlib, warns once, refuses gzip files,
    and the Python loader reads them; plain files are still packed natively."""
    (tmp_path / "inc").mkdir()
    (tmp_path / "inc" / "zlib.h").write_text("#error zlib.h: No such file or directory\n")
    packed = gzipped(GALS, tmp_path / "gals.xml.gz")
    script = ("import logging, sys\nlogging.basicConfig(level=logging.WARNING, format='%(message)s')\n"
              "from pstack_tasks.native import instance_loader\n"
              "for p in sys.argv[1:]:\n"
              "    print(instance_loader.load(p, min_bytes=0).instance.packed is not None)\n")
    env = dict(os.environ, CPLUS_INCLUDE_PATH=str(tmp_path / "inc"), PSTACK_CACHE_DIR=str(tmp_path / "cache"))
    p = subprocess.run([sys.executable, "-c", script, str(packed), str(GALS), str(packed)], capture_output=True,
                       text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["False", "True", "False"]
    warnings = [line for line in p.stderr.splitlines() if "without zlib" in line]
    assert len(warnings) == 1 and "install zlib1g-dev" in warnings[0] and "zlib.h" in warnings[0]
    assert [d.name for d in (tmp_path / "cache" / "loaders").iterdir() if d.is_dir()][0].endswith("-without-zlib")


# --- pstack test, pcli, the fleet -----------------------------------------------------------------

def test_pstack_test_finds_an_application_gz_beside_its_checker_file(tmp_path: Path) -> None:
    gzipped(RING, tmp_path / "ring.xml.gz")
    (tmp_path / "ring.py").write_text("def check_delivered(r):\n    assert r['metrics']['Delivered messages'] == 40\n")
    checks = tmp_path / "checks"
    checks.mkdir()
    gzipped(RING, tmp_path / "other.xml.gz")
    (checks / "other.py").write_text("def check_a(r):\n    pass\n")
    apps = find_apps([tmp_path])
    assert sorted((a.name, a.xml.name, a.py.name) for a in apps) == [("other", "other.xml.gz", "other.py"),
                                                                     ("ring", "ring.xml.gz", "ring.py")]
    assert [(a.name, a.xml.name) for a in find_apps([checks / "other.py"])] == [("other", "other.xml.gz")]
    # what psim's snapshots and checkpoints are named after, too
    assert [app_name(n) for n in ("a/ring.xml.gz", "ring.xml", "ring.gz", "ring")] == ["ring", "ring", "ring", "ring"]


def test_the_pytest_plugin_collects_a_gz_application(tmp_path: Path) -> None:
    from support.commands import bare_env
    apps = tmp_path / "apps"
    apps.mkdir()
    gzipped(RING, apps / "ring.xml.gz")
    (apps / "ring.py").write_text("def check_delivered(r):\n    assert r['metrics']['Delivered messages'] == 40\n")
    p = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q",
                        "--pstack-apps", str(apps)], capture_output=True, text=True, cwd=tmp_path, env=bare_env(),
                       timeout=120)
    assert "apps/ring.xml.gz::ring[psim-1]" in p.stdout and "apps/ring.xml.gz::ring[psim-3]" in p.stdout, p.stdout


def test_pcli_read_gives_the_xml_of_a_gz(tmp_path: Path) -> None:
    from pstack_tasks.ui.shell.apps import read
    assert read(gzipped(RING, tmp_path / "ring.xml.gz")) == read(RING) == read_text(RING)


def test_the_step_debugger_opens_a_gz(tmp_path: Path) -> None:
    from pstack_tasks import debug
    with debug(str(gzipped(RING, tmp_path / "ring.xml.gz"))) as s:
        s.until(lambda s: s.state("n0")["counter"] >= 5)
        assert [s.state(d)["counter"] for d in ("n0", "n1", "n2", "n3")] == [5, 4, 4, 4]


def test_pstack_run_prints_for_a_gz_what_it_prints_for_the_plain_file(tmp_path: Path, on_fleet: object) -> None:
    from support.commands import pstack
    packed = gzipped(RING, tmp_path / "ring.xml.gz")
    plain, compressed = (pstack("run", "--rmap", '{"n1": 1}', "--no-progress", str(p), env=dict(os.environ))
                         for p in (RING, packed))
    assert plain.returncode == compressed.returncode == 0, compressed.stderr
    assert compressed.stdout == plain.stdout and "Metric [Delivered messages]: 40" in plain.stdout


def test_pstack_test_runs_a_gz_application_and_its_checks_on_a_fleet(tmp_path: Path, on_fleet: object) -> None:
    from support.commands import pstack
    gzipped(RING, tmp_path / "ring.xml.gz")
    (tmp_path / "ring.py").write_text("def check_delivered(r):\n    assert r['metrics']['Delivered messages'] == 40\n")
    p = pstack("test", str(tmp_path), "--engine", "psim", env=dict(os.environ), timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.splitlines()[-1].startswith("pstack test: 3 passed, 0 failed, 0 errors (1 apps, engines psim)")


def test_run_and_submit_of_a_gz_on_the_fleet_give_the_plain_files_results(tmp_path: Path, on_fleet: object) -> None:
    from pstack_tasks.fleet.client import block, run, status, submit
    packed = gzipped(RING, tmp_path / "ring.xml.gz")
    plain = run(RING, rmap={"n1": 1}, timeout=60)
    compressed = run(packed, rmap={"n1": 1}, timeout=60)
    assert compressed["states"] == plain["states"] and compressed["metrics"]["Delivered messages"] == 40
    pid = submit(str(packed), rmap={"n1": 1, "n2": 2}).pid
    assert block(pid, timeout=60)["states"] == plain["states"]
    assert status(pid)["file"] == str(packed)
    bad_text = RING.read_text().replace('<DevI id="n1" type="node"', '<DevI id="n1" type="nope"')
    bad = gzipped(bad_text, tmp_path / "bad.xml.gz")
    with pytest.raises(GraphError, match=rf"^{bad}:\d+: "):
        run(bad, timeout=10)
    truncated = tmp_path / "cut.xml.gz"
    truncated.write_bytes(packed.read_bytes()[:200])
    with pytest.raises(GraphError, match=rf"^{truncated}: not a valid gzip file \(truncated"):
        submit(str(truncated))
