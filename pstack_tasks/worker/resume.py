"""A restarted region's checkpoint, on this host: the resume file its engine starts from.

A process restarted from a checkpoint (``restart``, or an automatic recovery) names it in its
record (``resume_from``); each region fetches that checkpoint (from Redis or the shared
PSTACK_CHECKPOINT_DIR) into a private file for its engine's ``--resume``, deleted when the region ends.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pstack_tasks.fleet.persistence.checkpoints import find, load


@contextmanager
def resume_file(pid: int, rec: dict[str, str]) -> Iterator[Path | None]:
    """The checkpoint the process resumes from as a file (None: it starts from the beginning)."""
    cid = rec.get("resume_from")
    if not cid:
        yield None
        return
    data = load(pid, find(pid, int(cid)))
    fd, name = tempfile.mkstemp(prefix=f"pstack-resume-{pid}-", suffix=".ckpt")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


__all__ = ["resume_file"]
