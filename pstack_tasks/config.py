"""Settings from the environment: the one place that reads ``os.environ``.

Every setting is ``PSTACK_<NAME>``, has a default, and is listed in
docs/configuration.md (a test keeps the two in step).  Values are read when
asked for, so a test or a worker can change the environment between runs.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Mapping

from .exceptions import ConfigurationError


def _default_cache_dir(environ: Mapping[str, str]) -> str:
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pstack-celery")


@dataclass(frozen=True)
class Settings:
    """pstack-celery's settings; field ``x`` comes from ``PSTACK_X``."""

    #: Redis for region messages (and, later, the Celery broker/backend). Unset: a private
    #: redis-server is started for each multi-region run.
    redis_url: str | None = None
    #: where compiled engines are cached (default $XDG_CACHE_HOME/pstack-celery or ~/.cache/pstack-celery)
    cache_dir: str = ""
    #: the C++ compiler used to build engines
    cxx: str = "g++"
    #: a directory holding engine.cpp.j2, to use instead of the packaged templates
    templates_dir: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        values: dict[str, str] = {}
        for f in fields(cls):
            raw = env.get(f"PSTACK_{f.name.upper()}")
            if raw is not None and raw.strip() != "":
                values[f.name] = raw.strip()
        values.setdefault("cache_dir", _default_cache_dir(env))
        settings = cls(**values)
        if settings.redis_url is not None and not settings.redis_url.startswith("redis://"):
            raise ConfigurationError(f"PSTACK_REDIS_URL={settings.redis_url!r}: expected redis://[user:password@]host:port/db")
        return settings

    @property
    def cache_path(self) -> Path:
        return Path(self.cache_dir)


def settings() -> Settings:
    """The settings as the environment says now."""
    return Settings.from_env()


def setting_names() -> list[str]:
    """The environment variable of every setting (docs/configuration.md lists them all)."""
    return [f"PSTACK_{f.name.upper()}" for f in fields(Settings)]


__all__ = ["Settings", "settings", "setting_names"]
