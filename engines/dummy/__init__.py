"""The dummy engine (SIMX's): counts for ``options["seconds"]`` seconds, compiles nothing.

It exists to exercise scheduling at scale: a fleet of dummy workers admits, runs, kills
and merges processes exactly as a psim fleet does, without engines or socat.
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from pstack_tasks.exceptions import ConfigurationError, RegionStopped

#: options it accepts; it reads only "seconds" ("overrides" too is accepted and ignored: a batch's runs
#: on the dummy engine exercise scheduling, not the application)
KNOWN = {"seconds", "region", "pid", "prefix", "redis_url", "log", "should_stop", "level", "quiet", "states", "app_id",
         "progress", "overrides"}


def run_engine(xml: str, rmap: Mapping[str, int] | None = None,
               options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    opts = dict(options or {})
    unknown = set(opts) - KNOWN
    if unknown:
        raise ConfigurationError(f"the dummy engine has no option(s) {', '.join(sorted(unknown))}; it takes 'seconds'")
    seconds = float(opts.get("seconds", 1.0))
    should_stop = opts.get("should_stop") or (lambda: None)
    progress = opts.get("progress") or (lambda delivered, steps: None)
    count, start = 0, time.monotonic()
    end = start + seconds
    while True:
        now = time.monotonic()
        if now >= end:
            break
        reason = should_stop()
        if reason:
            raise RegionStopped(reason)
        time.sleep(min(0.05, end - now))
        count += 1
        progress(count, count)  # its "messages" are its ticks
    return {"states": {}, "metrics": {"Delivered messages": count, "Exit code": 0, "Exit reason": "done",
                                      "Run seconds": round(time.monotonic() - start, 3)}}
