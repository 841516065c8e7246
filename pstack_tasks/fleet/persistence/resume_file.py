"""The file a resumed engine starts from (``engine --resume FILE``): every region's dump of one cut
and what was queued for each, in the layout engines/psim/runtime/pstack_snapshot.hpp reads.

The engines read it whatever the new region map: each takes its devices' states from the dump of
the region that held them at the cut, and delivers the in-flight items only to destinations that
were in the item's region then.
"""
from __future__ import annotations

import struct

from pstack_tasks.fleet.persistence.barrier import Cut

MAGIC = b"PSRS"
VERSION = 2


def resume_bytes(cut: Cut) -> bytes:
    """The resume file of a cut."""
    regions = sorted(cut.dumps)
    out = [MAGIC, struct.pack("<II", VERSION, len(regions))]
    for x in regions:
        raw = cut.dumps[x].raw
        out += [struct.pack("<I", len(raw)), raw]
    for x in regions:
        elements = cut.queued.get(x, [])
        out.append(struct.pack("<I", len(elements)))
        for e in elements:
            out += [struct.pack("<I", len(e)), e]
    out.append(struct.pack("<I", cut.idle_count))
    return b"".join(out)


def is_resume_file(data: bytes) -> bool:
    """Whether ``data`` starts as a resume file of this version."""
    return data[:4] == MAGIC and len(data) >= 12 and struct.unpack_from("<I", data, 4)[0] == VERSION


__all__ = ["resume_bytes", "is_resume_file"]
