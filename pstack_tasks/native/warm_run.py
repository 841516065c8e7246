"""psim's warm start: a file run before goes straight from its bytes to its engine and instance file.

Most of a small psim run is Python start-up: importing the graph model and lxml, parsing the file,
finding the engine (docs/psim.md, "Start-up").  A one-region run records, under the cache
directory, the engine it ran and its instance file (written there, or the native loader's cached
one), keyed by the file's content (:func:`~pstack_tasks.graph.app_file.file_digest`) and by
everything that decides the engine and the instance file: the package's graph and native code,
the templates, the runtime headers, the compiler and its flags
(:func:`~pstack_tasks.native.engine_inputs.signature`).  The next run of the same bytes finds the
record and starts the engine without importing the graph package.

A record is used only when its engine and instance file are still there and the instance file
still carries the engine's type hash; anything else is a miss, and the run parses as before.  So
a record can only save work, never run a stale engine.  At most :data:`MAX_RECORDS` are kept
(the least recently used go); an instance is copied into a record only when it is small.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pstack_tasks.config import settings
from pstack_tasks.graph.app_file import file_digest
from pstack_tasks.native import engine_inputs
from pstack_tasks.native.options import RunOptions
from pstack_tasks.protocol import TYPE_HASH_AT, type_hash_field

if TYPE_CHECKING:
    from pstack_tasks.native.prepare import Prepared

logger = logging.getLogger(__name__)

MAX_RECORDS = 64
#: the record's format: a new one makes every older record a miss
_FORMAT = "warm-run 1"


@dataclass(frozen=True)
class WarmRecord:
    """What a run of one file needs besides its options: the engine and the instance file."""

    engine: Path
    instance: Path
    type_hash: str

    def usable(self) -> bool:
        """The engine and the instance file are there, and the file carries the engine's type hash."""
        try:
            with open(self.instance, "rb") as f:
                f.seek(TYPE_HASH_AT)
                stamped = f.read(64)
        except OSError:
            return False
        return stamped == type_hash_field(self.type_hash) and self.engine.is_file()


def eligible(opts: RunOptions) -> bool:
    """Whether a run can start warm: no overrides to patch in, no resume file to check, no
    instance files to keep in ``tmpdir``."""
    return not (opts.overrides or opts.resume or opts.tmpdir)


def find(app: str) -> WarmRecord | None:
    """The record of the file ``app``'s content, if one is kept and usable (marked used now)."""
    try:
        entry = _root() / _key(app)
        engine, instance, type_hash = (entry / "record").read_text().split("\n")[:3]
        os.utime(entry)
    except (OSError, ValueError):
        return None
    record = WarmRecord(Path(engine), Path(instance), type_hash)
    if not record.usable():
        return None
    logger.debug("warm start: %s runs %s on %s", app, record.engine, record.instance)
    return record


def remember(app: str, prep: Prepared) -> WarmRecord | None:
    """Record the run of ``app`` in one region (its instance written into the record, or the
    native loader's file used in place), or None when the instance is too big to copy."""
    from pstack_tasks.graph.application import region_array  # here: the cold path has parsed already
    from pstack_tasks.native.instance_file import packed_in_place, write_instance

    regions, _ = region_array(prep.app.instance, None)
    packed = prep.app.instance.packed
    in_place = packed is not None and packed_in_place(packed, regions, prep.type_hash)
    if not in_place and not prep.app.worth_keeping():
        return None
    try:
        key = _key(app)
        root = _root()
        root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".warm-", dir=root))
    except OSError as e:
        logger.debug("warm start: no record for %s (%s)", app, e)
        return None
    try:
        entry = root / key
        if packed is not None and in_place:
            instance = Path(packed.path)
        else:
            instance = entry / "instance"
            with open(work / "instance", "wb") as f:
                write_instance(prep.app, f, regions, prep.type_hash)
        (work / "record").write_text(f"{prep.engine}\n{instance}\n{prep.type_hash}\n")
        _install(work, entry)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _prune(root, entry)
    record = WarmRecord(prep.engine, instance, prep.type_hash)
    return record if record.usable() else None


def _install(work: Path, entry: Path) -> None:
    """Put the record made in ``work`` at ``entry`` by a rename (readers see all of it or none).
    An entry already there was found unusable (its engine cleaned away, say): it is replaced;
    one that appeared meanwhile is another run's record of the same file, as good as this one."""
    try:
        os.rename(work, entry)
    except OSError:
        shutil.rmtree(entry, ignore_errors=True)
        try:
            os.rename(work, entry)
        except OSError:
            pass


def _root() -> Path:
    return settings().cache_path / "warm"


def _key(app: str) -> str:
    h = hashlib.sha256(f"{_FORMAT}\n{engine_inputs.signature(('native',))}\n".encode())
    h.update(file_digest(app).encode())
    return h.hexdigest()[:32]


def _prune(root: Path, keep: Path) -> None:
    """Remove the least recently used records beyond :data:`MAX_RECORDS`, and work directories
    of runs killed while they recorded (an hour old)."""
    try:
        found = [(p, p.stat().st_mtime) for p in root.iterdir()]
    except OSError:
        return
    records = sorted(((p, t) for p, t in found if not p.name.startswith(".")), key=lambda pt: pt[1], reverse=True)
    old = [p for p, t in found if p.name.startswith(".") and t < time.time() - 3600]
    for p in [p for p, _ in records[MAX_RECORDS:]] + old:
        if p != keep:
            shutil.rmtree(p, ignore_errors=True)
