"""Fuzz test of the XML reader: a few hundred mutated real applications through the real ``psim``.

The sources are the POETS corpus and pstack's test applications in the shared data directory
beside the clone (``../shared/data``), plus this repository's v3/v4 examples.  Each case is one
mutation (tests/support/mutate.py) run as ``psim -q -r --max-steps 200`` in a subprocess, and
must end in success (exit 0, a JSON result) or in exit status 1-5 with exactly ONE line on
stderr that names the file (and the line, where the error is about a place in the file): never
a traceback, never a hang.  A handler made uncompilable must give exit 4 naming the device type,
the handler and the line.

The seed changes per run and is printed; ``PSTACK_FUZZ_SEED=<seed>`` repeats a run exactly
(``PSTACK_FUZZ_CASES`` sets how many cases).  Failing cases are kept under the test's tmp_path
with their kind and source in the failure message.  Runs in the fast tier: no Redis is used.
"""
from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import pytest

from pstack_tasks.exceptions import GraphError
from pstack_tasks.graph.loader import load
from support.mutate import Case, mutate
from support.paths import SHARED_DATA

SHARED = SHARED_DATA
OWN = Path(__file__).resolve().parent / "data"
PSIM = Path(sys.executable).with_name("psim")
CASES = int(os.environ.get("PSTACK_FUZZ_CASES", "250"))
#: far above any case's expected time (a compile takes ~2 s on an idle machine): reaching it is a hang
TIMEOUT = 45.0
#: psim's own --time-limit: a mutated value can make a handler loop without sending
TIME_LIMIT = 3
#: one in this many of the cases the reader refuses also goes through the psim command (the others
#: are checked in this process: the command prints the reader's error as it is, exit 3); every
#: case the reader accepts goes through psim
COMMAND_SAMPLE = 8
WORKERS = 2
#: errors about the whole file, which has no line to name
FILE_LEVEL = ("the file has no <GraphType>", "the file has no <GraphInstance>", "empty document",
              "malformed XML: Document is empty", "malformed XML: Premature end of data",
              "malformed XML: Extra content at the end of the document", "malformed XML: EndTag: '</' not found")
COMPILE_ERROR = re.compile(r"compile error in (device type '[^']+', \w+( of pin '[^']+'| of the Supervisor\w+Pin)?"
                           r"|shared code[^,]*"
                           r"|\w+ of the supervisor), "
                           r"line \d+: ")


class Outcome(NamedTuple):
    number: int
    case: Case
    path: Path
    status: int | None  # None: timed out
    stdout: str
    stderr: str
    seconds: float


def _seed() -> int:
    """PSTACK_FUZZ_SEED, else one taken from the commit under test: each commit's run mutates
    differently, and a failure in CI repeats on that commit (a random seed only with no git)."""
    given = os.environ.get("PSTACK_FUZZ_SEED")
    if given:
        return int(given)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                          capture_output=True, text=True)
    if head.returncode == 0 and head.stdout.strip():
        return int(head.stdout.strip()[:8], 16)
    return random.SystemRandom().randrange(1 << 31)


def _sources() -> dict[str, bytes]:
    if not SHARED.is_dir():
        pytest.skip(f"no shared data directory beside the clone ({SHARED}): the fuzz test mutates its applications")
    files = [*sorted(SHARED.glob("poets-corpus/*.xml")), *sorted(SHARED.glob("pstack-tests/*.xml")),
             *sorted(OWN.glob("v3/*.xml")), *sorted(OWN.glob("v4/*.xml"))]
    return {f.name: f.read_bytes() for f in files if "typeref" not in f.name and "graph_inst" not in f.name}


def _refused(sources: dict[str, bytes], tmp: Path) -> set[str]:
    """The unmutated sources the reader refuses (supervisors, external devices): a broken handler
    in those cannot reach the compiler."""
    refused = set()
    for name, data in sources.items():
        path = tmp / name
        path.write_bytes(data)
        try:
            load(str(path))
        except GraphError:
            refused.add(name)
    return refused


def _run(number: int, case: Case, folder: Path, timeout: float = TIMEOUT) -> Outcome:
    name = f"case-{number:04d}-{case.kind}.xml"
    path = folder / name
    path.write_bytes(case.data)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PSTACK_REDIS")}
    start = time.monotonic()
    # its own session, so that a timeout ends psim and the engine it started, and nothing else
    p = subprocess.Popen([str(PSIM), "-q", "-r", "--max-steps", "200", "--time-limit", str(TIME_LIMIT),
                          "--no-states", name], cwd=folder, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
        status: int | None = p.returncode
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        status = None
    return Outcome(number, case, path, status, out, err, time.monotonic() - start)


def _check(number: int, case: Case, folder: Path) -> Outcome:
    """One case: the reader here first; through the psim command if the reader accepts it (so it is
    compiled and run) and for a sample of the refused ones (the command's own error path)."""
    path = folder / f"case-{number:04d}-{case.kind}.xml"
    path.write_bytes(case.data)
    start = time.monotonic()
    try:
        load(str(path))
    except GraphError as e:
        if number % COMMAND_SAMPLE:
            return Outcome(number, case, path, 3, "", f"psim: error: {e}\n", time.monotonic() - start)
    except Exception as e:  # the command would show this as a traceback
        return Outcome(number, case, path, 1, "", f"Traceback: {type(e).__name__}: {e}\n", time.monotonic() - start)
    return _run(number, case, folder)


def _reader_ends(path: Path) -> bool:
    """Whether the reader alone gets through ``path`` (in a subprocess, bounded): after a timeout it
    tells a hang of the reader (a failure here) from a handler that loops at run time."""
    code = "import sys; from pstack_tasks.graph.loader import load\ntry: load(sys.argv[1])\nexcept Exception: pass"
    try:
        subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return False
    return True


def problem(o: Outcome, refused: set[str]) -> str | None:
    """What is wrong with an outcome, or None if it is one the reader may give."""
    broken_handler = o.case.kind == "handler_code" and o.case.source not in refused
    if o.status is None:
        who = "the run (past psim's --time-limit)" if _reader_ends(o.path) else "the reader"
        return f"{who} did not end within {TIMEOUT:.0f} s (a hang)"
    if "Traceback" in o.stderr:
        return "a Python traceback"
    if o.status == 0:
        try:
            json.loads(o.stdout)
        except ValueError:
            return "exit 0 without a JSON result"
        return "a handler that cannot compile ran" if broken_handler else None
    if not 1 <= o.status <= 5:
        return f"exit status {o.status}"
    lines = o.stderr.strip("\n").split("\n")
    if len(lines) != 1:
        return f"{len(lines)} lines on stderr"
    if broken_handler and (o.status != 4 or not COMPILE_ERROR.search(lines[0])):
        return "a handler that cannot compile did not give exit 4 naming device type, handler and line"
    return _error_line_problem(lines[0], o.path.name, o.status)


#: a run-time failure (exit 1) names where it happened: the handler and the device, not a line of
#: the file (a time limit, a crash, a sendIndex out of range, ...)
RUNTIME_ERROR = re.compile(r"^psim: error: .*\b(handler|OnSend|OnReceive|OnInit|OnHardwareIdle)\b.*\bdevice '[^']+'")


def _error_line_problem(line: str, name: str, status: int | None = None) -> str | None:
    """What is wrong with the one error line of a failed case."""
    if status == 1 and RUNTIME_ERROR.match(line):
        return None
    if not line.startswith("psim: error: ") or name not in line:
        return "the error is not 'psim: error: ...' naming the file"
    if not re.search(rf"\b{re.escape(name)}:\d+\b", line) and not any(s in line for s in FILE_LEVEL):
        return "the error names no line"
    return None


def test_mutated_applications_end_in_success_or_one_line(tmp_path: Path) -> None:
    sources = _sources()
    seed = _seed()
    print(f"\nfuzz seed {seed}: rerun with PSTACK_FUZZ_SEED={seed}")
    refused = _refused(sources, tmp_path)
    cases = [mutate(sources, seed, i) for i in range(CASES)]
    start = time.monotonic()
    with ThreadPoolExecutor(WORKERS) as pool:
        outcomes = list(pool.map(lambda ic: _check(ic[0], ic[1], tmp_path), enumerate(cases)))
    took = time.monotonic() - start
    statuses = Counter((o.case.kind, o.status) for o in outcomes)
    print(f"{len(outcomes)} cases in {took:.1f} s; slowest {max(o.seconds for o in outcomes):.1f} s")
    for (kind, status), n in sorted(statuses.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        print(f"  {kind:20} exit {status}: {n}")
    bad = [(o, p) for o in outcomes if (p := problem(o, refused))]
    report = "\n".join(f"case {o.number} ({o.case.kind} of {o.case.source}, kept as {o.path}): {p}; "
                       f"exit {o.status}; stderr: {o.stderr.strip()[:400]!r}" for o, p in bad[:20])
    assert not bad, f"seed {seed} (PSTACK_FUZZ_SEED={seed}): {len(bad)} of {len(outcomes)} cases wrong:\n{report}"


#: what the fuzzer found outside the reader, now fixed: (source, text replaced, replacement, the
#: one error line expected)
FOUND_CASES = [
    pytest.param(OWN / "v3/indexed.xml", '<EdgeI path="l2:in-hub:out" sendIndex="3"/>', "",
                 r"^psim: error: OnSend of pin 'out' \(device type 'hub'\) of device 'hub' set \*sendIndex = 3, "
                 r"but the pin has 3 edges", id="send-index-out-of-range"),
    pytest.param(SHARED / "poets-corpus/betweeness_centrality_16_16_2_2.xml",  # degree 0: do {} while (i >= 0)
                 '"node_id": 11, "degree": 15,', '"node_id": 11,',
                 r"^psim: error: time limit of \d+ s exceeded \(in handler OnSend of pin '\w+' \(device type "
                 r"'node'\) of device 'n11'\)", id="handler-loops-without-sending"),
]


@pytest.mark.parametrize("source, old, new, expected", FOUND_CASES)
def test_what_the_fuzzer_found_outside_the_reader_ends_in_one_line(source: Path, old: str, new: str,
                                                                    expected: str, tmp_path: Path) -> None:
    """A run-time failure of a mutated file: one line naming the handler and the device, exit 1,
    within twice psim's --time-limit once its engine is built (a handler that loops without sending
    is stopped by it; the first run also compiles the mutated graph type, which a loaded machine
    may take seconds over)."""
    if not source.is_file():
        pytest.skip(f"{source} is absent")
    text = source.read_text()
    assert old in text
    case = Case(source.name, "found", text.replace(old, new).encode())
    _run(0, case, tmp_path)  # builds the engine
    o = _run(1, case, tmp_path, timeout=2 * TIME_LIMIT)
    assert o.status == 1, (o.status, o.stderr)
    lines = o.stderr.strip("\n").split("\n")
    assert len(lines) == 1 and re.match(expected, lines[0]), o.stderr
    assert _error_line_problem(lines[0], o.path.name, o.status) is None
