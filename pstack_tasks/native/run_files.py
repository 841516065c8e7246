"""Where a run's files go: its work directory, and the instance file its engines load.

The instance file of a split is cached beside the application when the run has an ``app_id``
(a worker runs the same small split again and again); otherwise it is written for the run, in
``tmpdir`` (kept) or a temporary directory (removed with the run).
"""
from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
import threading
from array import array
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from pstack_tasks.graph.overrides import NO_PATCH, Patch, resolve
from pstack_tasks.native import build
from pstack_tasks.native.instance_file import packed_in_place, patch_instance, write_instance
from pstack_tasks.native.options import RunOptions
from pstack_tasks.native.prepare import Prepared


@dataclass
class RunDir:
    """The directory a run writes to; ``keep`` when the user named it (``tmpdir``)."""

    path: Path
    keep: bool

    @classmethod
    def make(cls, opts: RunOptions, stack: ExitStack) -> RunDir:
        """``opts.tmpdir`` (made if missing), else a temporary directory removed when ``stack`` closes."""
        if opts.tmpdir:
            p = Path(opts.tmpdir)
            p.mkdir(parents=True, exist_ok=True)
            return cls(p, True)
        d = tempfile.mkdtemp(prefix="pstack-run-")
        stack.callback(shutil.rmtree, d, True)
        return cls(Path(d), False)


def instance_file(prep: Prepared, regions: array[int], opts: RunOptions, stack: ExitStack) -> Path:
    """The binary instance file for this split: cached beside the application when it has an
    ``app_id`` (a worker runs the same small split again and again), else written for this run.
    An instance the native loader packed runs in one region from the loader's own file (no copy).
    The run's overrides (``opts.overrides``) are patched into it: a small instance's cached file is
    kept per patch, a big one's is written for the run."""
    patch = run_patch(prep, opts)
    packed = prep.app.instance.packed
    if packed is not None and not opts.tmpdir and not patch and packed_in_place(packed, regions, prep.type_hash):
        return Path(packed.path)
    # a patched instance is cached only when small: a sweep of a big one would fill the disk with copies
    if opts.app_id and not opts.tmpdir and (not patch or prep.app.worth_keeping()):
        split = hashlib.sha256(regions.tobytes()).hexdigest()[:24]
        patched = f"-{patch.digest}" if patch else ""
        path = build.app_dir(opts.app_id) / f"{prep.type_hash[:16]}-{split}{patched}.inst"
        if not path.is_file():
            buf = io.BytesIO()
            write_instance(prep.app, buf, regions, prep.type_hash)
            patch_instance(buf, prep.app.graph_type, patch)
            build.write_atomically(path, buf.getvalue())
        return path
    return write_instance_file(prep, regions, RunDir.make(opts, stack).path, patch)


def run_patch(prep: Prepared, opts: RunOptions) -> Patch:
    """The run's overrides as a patch of its instance file (GraphError naming a bad key)."""
    return resolve(prep.app, opts.overrides) if opts.overrides else NO_PATCH


def write_instance_file(prep: Prepared, regions: array[int], where: Path, patch: Patch = NO_PATCH) -> Path:
    """Write the instance file (with ``patch`` applied) into ``where`` under a name no other thread
    or process uses."""
    path = where / f"{prep.app.graph_type.id}.{os.getpid()}.{threading.get_ident()}.inst"
    with open(path, "w+b") as f:
        write_instance(prep.app, f, regions, prep.type_hash)
        patch_instance(f, prep.app.graph_type, patch)
    return path
