"""What a run may be told: the ``options`` of ``psim``/``run_engine``, checked and typed."""
from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from pstack_tasks.config import settings
from pstack_tasks.exceptions import ConfigurationError

LogSink = Callable[[str], None]


@dataclass
class RunOptions:
    """What a run may be told (the ``options`` dict of ``psim``/``run_engine``)."""

    level: int = 1              # handler_log level printed
    quiet: bool = False         # no log lines at all
    states: bool = True         # report final device states
    full_state: bool = False    # include array/tuple state members
    max_steps: int = 0          # stop after this many sends (0: no limit)
    time_limit: float = 0.0     # stop after this many seconds of simulation (0: no limit)
    pid: int | None = None      # process id used in queue names (allocated from Redis if unset)
    region: int | None = None   # run only this region (run_engine protocol); None: all regions
    prefix: str = ""            # prepended to every Redis key this run uses
    redis_url: str | None = None
    tmpdir: str | None = None   # where instance files go (kept if set)
    log: LogSink | None = None  # receives each log line; default: stderr
    should_stop: Callable[[], str | None] | None = None  # polled while running: a reason stops the run
    app_id: str | None = None   # content hash of the application: parsed once per process, then reused
    progress: Callable[[int, int], None] | None = None  # receives (delivered, steps) a few times a second
    regions: int | None = None  # split into this many regions by METIS (rmap "auto:K"); an rmap refuses it
    split_digest: str | None = None  # the automatic split the client computed (split_cache.split_digest)
    overrides: Mapping[str, Any] | None = None  # {key: value} patched into the instance (graph/overrides.py)
    resume: str | None = None   # a checkpoint's resume file to start from (docs/persistence.md)
    snapshot_dir: str | None = None  # one region: SIGUSR1 asks its engine for a dump there (docs/persistence.md)
    on_split: Callable[[str, int, list[int]], None] | None = None  # a local split's Redis URL, pid, regions

    @classmethod
    def from_dict(cls, options: Mapping[str, Any] | None) -> RunOptions:
        """Options from a plain mapping; a name that is not an option is refused, naming the known ones."""
        names = {f.name for f in fields(cls)}
        unknown = set(options or {}) - names
        if unknown:
            raise ConfigurationError(f"unknown option(s) {', '.join(sorted(unknown))}; "
                                     f"known: {', '.join(sorted(names))}")
        return cls(**dict(options or {}))

    def log_sink(self) -> LogSink | None:
        """Where handler log lines go: nowhere when quiet, else ``log``, else stderr."""
        if self.quiet:
            return None
        if self.log is not None:
            return self.log
        return lambda line: print(line, file=sys.stderr, flush=True)

    def redis(self) -> str | None:
        """The run's Redis: its own option, else PSTACK_REDIS_URL (None: start a private one)."""
        return self.redis_url or settings().redis_url
