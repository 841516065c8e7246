"""Parsed instances kept by content hash, so that the next run of the same file skips the parse.

The native loader's output (the instance body and its counts) is kept under the build cache dir,
keyed by the file's content, the packing layout and the loader's source; at most
:data:`MAX_ENTRIES` instances and :data:`MAX_BYTES` bytes are kept (the least recently used go).
An entry appears by an atomic rename, under a file lock, like engines (``native/build.py``).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from pstack_tasks.graph.app_file import file_digest
from pstack_tasks.native import build

#: an instance body and the counts and ids the loader reported
Body = tuple[dict[str, str], Path]
MAX_ENTRIES = 8
MAX_BYTES = 4 << 30


def root() -> Path:
    return build.cache_dir() / "instances"


def content_key(path: str, salt: str) -> str:
    """The cache key of a file's content read with ``salt`` (layout and loader): its bytes as
    they are on disk (:func:`~pstack_tasks.graph.app_file.file_digest`)."""
    return hashlib.sha256(f"{salt}\0{file_digest(path)}".encode()).hexdigest()[:32]


def cached_body(key: str) -> Body | None:
    """The kept body for ``key``, if any (marked used now)."""
    entry = root() / key
    try:
        meta = json.loads((entry / "meta.json").read_text())
        os.utime(entry)
    except (OSError, ValueError):
        return None
    return meta, entry / "body"


def store_body(key: str, body: Path, meta: dict[str, str]) -> Body:
    """Keep ``body`` (moved) with ``meta`` under ``key``; older entries go past the bounds."""
    base = root()
    base.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock
    with FileLock(base / "instances.lock"):
        entry = base / key
        if not (entry / "meta.json").is_file():
            work = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=base))
            shutil.move(str(body), work / "body")
            (work / "meta.json").write_text(json.dumps(meta))
            shutil.rmtree(entry, ignore_errors=True)
            os.replace(work, entry)
        _prune(base, keep=entry)
    return meta, entry / "body"


def _prune(base: Path, keep: Path) -> None:
    """Remove the least recently used entries beyond :data:`MAX_ENTRIES` or :data:`MAX_BYTES`."""
    entries = sorted((p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")),
                     key=lambda p: p.stat().st_mtime, reverse=True)
    total = 0
    for n, p in enumerate(entries):
        size = (p / "body").stat().st_size if (p / "body").is_file() else 0
        total += size
        if p != keep and (n >= MAX_ENTRIES or total > MAX_BYTES):
            shutil.rmtree(p, ignore_errors=True)
