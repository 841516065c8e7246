"""Automatic splits, computed once per instance: ``rmap="auto:K"`` / ``regions=K`` resolved into
each device's region, through a small file cache keyed by the instance's content.

METIS on a 90,000-device grid takes about a second, longer than the whole engine run of a small
application; every region of a process, and every run of the same application, asks for the
same split.  So a split is kept under the cache directory (``splits/<sha256>.split``), keyed by
the instance's edges and device count, K, the method and the algorithm's version.  A file lock
lets one of several concurrent runs compute it while the others wait and read it; files appear
by atomic rename; the oldest go past :data:`MAX_FILES`.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from array import array
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from pstack_tasks.graph import partition
from pstack_tasks.graph.application import Application, Instance, region_array
from pstack_tasks.graph.partition import PartitionReport
from pstack_tasks.native.build import cache_dir, write_atomically

logger = logging.getLogger(__name__)

#: splits kept on this host (a 1,000,000-device split is 4 MB)
MAX_FILES = 64
RegionMap = Mapping[str, int] | str | None


def resolve(app: Application, rmap: RegionMap) -> tuple[array[int], list[int], PartitionReport | None]:
    """Each device's region, the regions in use, and the split's report when it was automatic.

    ``rmap`` is a region map ``{device: region}``, ``"auto:K"`` (K regions by METIS), or None.
    """
    k = partition.auto_regions(rmap)
    if k is None:
        arr, regions = region_array(app.instance, rmap if isinstance(rmap, Mapping) else None, app.file)
        return arr, regions, None
    arr, report = cached_split(app.instance, k)
    return arr, sorted(set(arr)), report


def cached_split(inst: Instance, k: int, method: str = "metis") -> tuple[array[int], PartitionReport]:
    """:func:`partition.split` of ``inst``, read from the cache when it was computed before
    (``report.cached``), else computed and kept."""
    partition.region_count(k)
    if k == 1 or k > inst.device_count:  # nothing to keep, or an error to give
        return partition.split(inst, k, method)
    path = split_dir() / f"{split_key(inst, k, method)}.split"
    hit = _read(path, inst.device_count)
    if hit is not None:
        return hit
    path.parent.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock  # here: only a computation needs it
    with FileLock(split_dir() / "compute.lock"):
        hit = _read(path, inst.device_count)  # another run computed it while we waited
        if hit is not None:
            return hit
        parts, report = partition.split(inst, k, method)
        header = json.dumps(report.as_dict()).encode()
        write_atomically(path, header + b"\n" + parts.tobytes())
        _prune(path.parent)
    logger.info("split computed: %s", report.describe())
    return parts, report


def split_digest(parts: array[int]) -> str:
    """A short hash of a split, for checking that two hosts computed the same one."""
    return hashlib.sha256(parts.tobytes()).hexdigest()[:16]


def split_dir() -> Path:
    return cache_dir() / "splits"


def split_key(inst: Instance, k: int, method: str) -> str:
    """The content hash a split is kept under: what it is computed from, and by which code."""
    from importlib import metadata  # here: psim without a split does not pay for the import
    h = hashlib.sha256()
    version = metadata.version("pymetis") if method == "metis" else ""
    h.update(f"{partition.ALGORITHM_VERSION}\0{method}\0{version}\0{k}\0{inst.device_count}\0".encode())
    h.update(inst.edges.tobytes())
    return h.hexdigest()


def _read(path: Path, devices: int) -> tuple[array[int], PartitionReport] | None:
    """A kept split, or None (absent, or not whole: then it is computed again)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    header, _, body = data.partition(b"\n")
    if len(body) != 4 * devices:
        logger.warning("split cache file %s is damaged; computing the split again", path)
        return None
    parts = array("I")
    parts.frombytes(body)
    fields = json.loads(header)
    fields.pop("cut", None)
    report = replace(PartitionReport(**fields), cached=True, seconds=0.0)
    try:
        os.utime(path)  # recently used: pruned last
    except OSError:
        pass
    return parts, report


def _prune(directory: Path) -> None:
    """Remove the least recently used splits past MAX_FILES."""
    dated = []
    for path in directory.glob("*.split"):
        try:
            dated.append((path.stat().st_mtime, path))
        except OSError:  # removed by another run's prune meanwhile
            continue
    for _, old in sorted(dated)[:-MAX_FILES]:
        old.unlink(missing_ok=True)


__all__ = ["resolve", "cached_split", "split_digest", "split_key", "split_dir", "RegionMap", "MAX_FILES"]
