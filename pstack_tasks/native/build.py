"""Compile engine sources into a content-addressed cache.

The cache key hashes the source, the runtime headers, the compiler's identity
and the flags, so a graph type compiles once per host and every later run, at
any instance size, starts at once.  Several workers may build the same key at
the same time: a file lock serialises them and the binary appears by an atomic
rename, so nobody ever runs a half-written engine.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

from pstack_tasks.config import settings
from pstack_tasks.exceptions import BuildError
from pstack_tasks.native.codegen import CodeSpan, EngineSource
from pstack_tasks.native.engine_inputs import CXXFLAGS, RUNTIME_DIR, compiler

logger = logging.getLogger(__name__)

DIAGNOSTIC = re.compile(r"^(?P<file>[^:\n]+):(?P<line>\d+):(?:(?P<col>\d+):)? "
                        r"(?P<kind>fatal error|error): (?P<msg>.*)$")


def cache_dir() -> Path:
    """Where engines are cached (``PSTACK_CACHE_DIR``)."""
    return settings().cache_path


@lru_cache(maxsize=8)
def _compiler_identity(cxx: str) -> str:
    out = subprocess.run([cxx, "--version"], capture_output=True, text=True)
    return out.stdout.splitlines()[0] if out.stdout else cxx


@lru_cache(maxsize=1)
def _runtime_digest() -> str:
    h = hashlib.sha256()
    for path in sorted(RUNTIME_DIR.glob("*.hpp")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def app_dir(app_id: str) -> Path:
    """Where files derived from one application (by content hash) are kept on this host."""
    return cache_dir() / "apps" / app_id


def write_atomically(path: Path, data: bytes) -> None:
    """Write a cache file so that a concurrent reader sees all of it or none of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def cache_key(source: EngineSource) -> str:
    cxx = compiler()
    h = hashlib.sha256()
    for part in (source.text, _runtime_digest(), _compiler_identity(cxx), " ".join(CXXFLAGS)):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:32]


def build_engine(source: EngineSource) -> Path:
    """The path of the compiled engine for ``source``, compiling it only if the cache lacks it."""
    key = cache_key(source)
    root = cache_dir() / "engines"
    final = root / key / "engine"
    if final.is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock  # here: only a build needs it, and it costs ~40 ms to import
    with FileLock(root / f"{key}.lock"):
        if final.is_file():  # another worker built it while we waited
            return final
        work = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=root))
        try:
            src = work / "engine.cpp"
            src.write_text(source.text)
            cmd = [compiler(), *CXXFLAGS, "-I", str(RUNTIME_DIR), "-o", str(work / "engine"), str(src)]
            logger.info("compiling engine %s", key)
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=work)
            if proc.returncode != 0:
                failed = root / "failed"
                failed.mkdir(exist_ok=True)
                kept = failed / f"{key}.cpp"
                shutil.copyfile(src, kept)  # the work dir goes; keep the source the message points at
                raise BuildError(explain_compiler_errors(proc.stderr, source, kept))
            shutil.rmtree(root / key, ignore_errors=True)  # a damaged entry (its engine removed by hand)
            os.replace(work, root / key)  # atomic: the directory appears complete or not at all
        finally:
            if work.exists():
                shutil.rmtree(work, ignore_errors=True)
    return final


def locate(line: int, spans: tuple[CodeSpan, ...]) -> CodeSpan | None:
    for span in spans:
        if span.code.line <= line <= span.last_line:
            return span
    return None


def explain_compiler_errors(stderr: str, source: EngineSource, generated: Path) -> str:
    """The compiler's first error, mapped back to the device type, handler and line in the handler."""
    errors = []
    for raw in stderr.splitlines():
        m = DIAGNOSTIC.match(raw)
        if m:
            errors.append(m)
    if not errors:
        tail = "\n".join(stderr.strip().splitlines()[-5:])
        return f"the compiler failed without a recognisable error message:\n{tail}"
    m = errors[0]
    more = f" ({len(errors) - 1} more errors)" if len(errors) > 1 else ""
    line = int(m.group("line"))
    if m.group("file") == source.file:
        span = locate(line, source.spans)
        if span is not None:
            where = (f"device type '{span.device_type}', {span.code.what}" if span.device_type
                     else span.code.what)
            inner = line - span.first_line + 1
            return f"{source.path}:{line}: compile error in {where}, line {inner}: {m.group('msg')}{more}"
        return f"{source.path}:{line}: compile error: {m.group('msg')}{more}"
    ended = _span_ending_at(source, line)
    if ended is not None:  # the first token after the code: it ended with an operator, or lacks a ';'
        where = f"device type '{ended.device_type}', {ended.code.what}" if ended.device_type else ended.code.what
        last = ended.code.line + ended.code.text.rstrip().count("\n")  # its last line that is not blank
        return (f"{source.path}:{last}: compile error in {where}, at the end of its code "
                f"(line {last - ended.first_line + 1}): {m.group('msg')}{more}")
    unbalanced = _unbalanced_span(source.spans)
    if unbalanced is not None:  # a stray brace ends the handler early: the errors land after it
        span, where_line, why = unbalanced
        where = f"device type '{span.device_type}', {span.code.what}" if span.device_type else span.code.what
        return (f"{source.path}:{where_line}: compile error in {where}, line {where_line - span.first_line + 1}: "
                f"{why} (the compiler then reports: {m.group('msg')}{more})")
    return (f"compile error in generated code {generated}:{line}: {m.group('msg')}{more} "
            "(this may be a pstack-celery bug; please report it with that file)")


_LINE_DIRECTIVE = re.compile(r'^#line (\d+) "([^"]*)"$', re.M)


def _span_ending_at(source: EngineSource, line: int) -> CodeSpan | None:
    """The application code right before line ``line`` of the generated code, when the error is on
    the first generated line after it (the compiler reports a handler's trailing junk there)."""
    directives = list(_LINE_DIRECTIVE.finditer(source.text))
    for before, reset in zip(directives, directives[1:]):
        if (reset.group(2) != source.file and int(reset.group(1)) in (line, line - 1)
                and before.group(2) == source.file):
            return locate(int(before.group(1)), source.spans)
    return None


_C_NOISE = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.S)


def _unbalanced_span(spans: tuple[CodeSpan, ...]) -> tuple[CodeSpan, int, str] | None:
    """The first piece of application code whose braces or parentheses do not balance (comments
    and literals aside), with the XML line of the first stray closer or of the code's last line."""
    for span in spans:
        text = _C_NOISE.sub(lambda c: re.sub(r"[^\n]", " ", c.group(0)), span.code.text)
        for opener, closer in (("{", "}"), ("(", ")")):
            depth = 0
            for i, ch in enumerate(text):
                depth += (ch == opener) - (ch == closer)
                if depth < 0:
                    return span, span.code.line + text[:i].count("\n"), f"'{closer}' without a matching '{opener}'"
            if depth > 0:
                return span, span.last_line, f"{depth} '{opener}' not closed"
    return None
