"""What a region's engine costs while it runs: its resident memory and CPU seconds, read from
``/proc`` by the worker process that started it (``status`` shows them per region).

The engine is a child of this worker process named ``engine`` (its relay, ``socat``, is another);
its children are listed by the kernel per thread (``/proc/<pid>/task/<tid>/children``).
"""
from __future__ import annotations

import os

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def engine_usage(parent: int | None = None) -> tuple[int, float] | None:
    """(resident bytes, CPU seconds) of the engine this process runs now; None when none runs."""
    for child in _children(parent or os.getpid()):
        try:
            with open(f"/proc/{child}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        if name != "engine":
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        cpu = (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime
        rss = int(fields[21]) * _PAGE
        return rss, round(cpu, 2)
    return None


__all__ = ["engine_usage"]
