"""Settings from the environment: the one place that reads ``os.environ``.

Every setting is ``PSTACK_<NAME>``, has a default, and is listed in
docs/configuration.md (a test keeps the two in step).  Values are read when
asked for, so a test or a worker can change the environment between runs.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from pstack_tasks.exceptions import ConfigurationError


def _default_cache_dir() -> str:
    """The platform's user cache directory: $XDG_CACHE_HOME/pstack-celery or ~/.cache/pstack-celery
    on Linux (read from the process environment, as every platform's rule differs)."""
    import platformdirs  # here: settings are read by every psim run, this only when no cache dir is set
    return platformdirs.user_cache_dir("pstack-celery", appauthor=False)


@dataclass(frozen=True)
class Settings:
    """pstack-celery's settings; field ``x`` comes from ``PSTACK_X``."""

    #: Redis: Celery broker and result backend, process records, region messages. Unset: psim
    #: and ``pstack run`` start a private redis-server (and local workers) for each run.
    redis_url: str | None = None
    #: prepended to every Redis key the stack writes (broker queues included), so several
    #: stacks or test runs can share one Redis database
    key_prefix: str = "pstack:"
    #: the engine type a process runs on unless ``run(..., engine=...)`` says otherwise
    engine: str = "psim"
    #: who owns the processes this client creates (default: the operating-system user)
    user: str | None = None
    #: the group of the processes this client creates unless ``run(..., group=...)`` says otherwise
    #: (workers started with ``--group`` serve only their groups' processes: docs/fleet.md)
    group: str | None = None
    #: comma-separated groups whose processes this worker serves (``pstack worker --group``)
    worker_groups: str = ""
    #: comma-separated users whose processes this worker serves (``pstack worker --user``);
    #: with neither set, a worker serves everyone
    worker_users: str = ""
    #: comma-separated user names that may kill any user's process (checked by the client:
    #: docs/security.md says why Redis credentials, not this, are the real boundary)
    admins: str = ""
    #: seconds process records and results are kept after a process ends
    result_expires: int = 7 * 24 * 3600
    #: seconds without a heartbeat after which a region (or a worker) counts as lost
    heartbeat_ttl: float = 6.0
    #: seconds every region of a started process has to begin running before the process fails
    start_timeout: float = 60.0
    #: where compiled engines are cached (default $XDG_CACHE_HOME/pstack-celery or ~/.cache/pstack-celery)
    cache_dir: str = ""
    #: the C++ compiler used to build engines
    cxx: str = "g++"
    #: a directory holding engine.cpp.j2, to use instead of the packaged templates
    templates_dir: str | None = None
    #: CPU seconds an engine may use before it is stopped and its process fails (0: no limit)
    engine_cpu_limit: int = 0
    #: MiB of address space an engine may map (0: no limit)
    engine_memory_limit: int = 0
    #: MiB an engine may write to any one file (0: no limit)
    engine_file_limit: int = 0
    #: wall-clock seconds a run may take when it sets no ``time_limit`` of its own (0: no limit); a
    #: handler that loops or sleeps is stopped from outside the engine, and the run fails
    default_time_limit: float = 0.0
    #: seconds a worker keeps the socat relay of a cleanly ended region for its next one
    #: (0: a new relay for every region; pstack_tasks/relay.py says why they are kept)
    relay_idle: float = 1.0
    #: 1: large instances are packed by the native loader (pstack_tasks/native/instance_loader.py)
    #: and kept parsed by content hash; 0: every instance is read by the Python loader
    native_loader: int = 1
    #: a directory (shared storage on a fleet) for checkpoints larger than checkpoint_redis_max;
    #: unset: every checkpoint is kept in Redis (docs/persistence.md)
    checkpoint_dir: str = ""
    #: bytes up to which a checkpoint is kept in Redis rather than in checkpoint_dir
    checkpoint_redis_max: int = 16 * 1024 * 1024
    #: checkpoints kept per process (the oldest is dropped when a new one is taken)
    checkpoints_kept: int = 3
    #: times a process with checkpoints is resumed after losing a worker before it fails
    max_recoveries: int = 3
    #: seconds every region has to pause for a snapshot before it fails (and the regions resume)
    snapshot_timeout: float = 10.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            name = f"PSTACK_{f.name.upper()}"
            raw = env.get(name)
            if raw is not None and raw.strip() != "":
                values[f.name] = _convert(name, raw.strip(), f.default, f.name in _ZERO_MEANS_OFF)
        if "cache_dir" not in values:
            values["cache_dir"] = _default_cache_dir()
        settings = cls(**values)  # type: ignore[arg-type]
        if settings.redis_url is not None and not settings.redis_url.startswith("redis://"):
            raise ConfigurationError(f"PSTACK_REDIS_URL={mask_url(settings.redis_url)!r}: "
                                     "expected redis://[user:password@]host:port/db")
        return settings

    @property
    def cache_path(self) -> Path:
        return Path(self.cache_dir)


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***``: the form every message and log line shows.

    A Redis URL carries the fleet's credentials; anyone who reads a log, a ``ps`` listing or an
    error message must not learn them from it.  kombu's sanitizer is the one Celery's own banner
    and logs use (it drops the query string too, which may hold ``?password=``).
    """
    from kombu.utils.url import maybe_sanitize_url  # here: kombu costs ~60 ms to import, psim rarely needs it
    return str(maybe_sanitize_url(url, mask="***"))


#: settings whose default is not 0, but for which 0 is meaningful (it turns the feature off)
_ZERO_MEANS_OFF = {"relay_idle", "native_loader", "max_recoveries"}


def _convert(name: str, raw: str, default: object, zero_ok: bool = False) -> object:
    """Numbers where the default is a number, named in the error when they are not."""
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        kind = type(default)
        try:
            value = kind(raw)
        except ValueError:
            raise ConfigurationError(f"{name}={raw!r}: expected a{'n integer' if kind is int else ' number'}") from None
        if value < 0 or (value == 0 and default != 0 and not zero_ok):
            least = "0 or more" if zero_ok or default == 0 else "greater than 0"
            raise ConfigurationError(f"{name}={raw!r}: must be {least}")
        return value
    return raw


_ALSO_READ = ("XDG_CACHE_HOME", "HOME")
_last: tuple[tuple[object, ...], Settings] | None = None


def settings() -> Settings:
    """The settings as the environment says now.

    Built again only when one of the variables changed: a worker asks for them many
    times per region, and a test or a long-lived client may change them at any time.
    """
    global _last
    raw = _raw_environment()
    if _last is None or _last[0] != raw:
        _last = (raw, Settings.from_env())
    return _last[1]


_NAMES = tuple(f"PSTACK_{f.name.upper()}" for f in fields(Settings))
_WATCHED = _NAMES + _ALSO_READ
_WATCHED_KEYS = tuple(os.environ.encodekey(n) for n in _WATCHED) if hasattr(os.environ, "encodekey") else None


def _raw_environment() -> tuple[object, ...]:
    """The watched variables' raw values: what settings() compares, many times a second in a
    worker.  CPython's os.environ keeps them in ``_data`` (encoded), where a lookup is a plain
    dict lookup; elsewhere, the public mapping."""
    data = getattr(os.environ, "_data", None)
    if _WATCHED_KEYS is not None and isinstance(data, dict):
        return tuple(map(data.get, _WATCHED_KEYS))
    return tuple(map(os.environ.get, _WATCHED))


def setting_names() -> list[str]:
    """The environment variable of every setting (docs/configuration.md lists them all)."""
    return [f"PSTACK_{f.name.upper()}" for f in fields(Settings)]


__all__ = ["Settings", "settings", "setting_names", "mask_url"]
