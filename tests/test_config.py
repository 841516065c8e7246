"""Settings come from PSTACK_* variables only, fail early when malformed, and are all documented."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from pstack_tasks.config import Settings, setting_names
from pstack_tasks.exceptions import ConfigurationError


def test_defaults_and_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", "/x")  # the platform's cache directory comes from the process environment
    s = Settings.from_env({})
    assert s.redis_url is None and s.cxx == "g++" and s.cache_dir == "/x/pstack-celery"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", "/home/ann")
    assert Settings.from_env({}).cache_dir == "/home/ann/.cache/pstack-celery"
    s = Settings.from_env({"PSTACK_REDIS_URL": "redis://h:1/2", "PSTACK_CACHE_DIR": "/c", "PSTACK_CXX": " clang++ "})
    assert (s.redis_url, s.cache_dir, s.cxx) == ("redis://h:1/2", "/c", "clang++")


def test_empty_values_count_as_unset() -> None:
    assert Settings.from_env({"PSTACK_REDIS_URL": ""}).redis_url is None


def test_malformed_redis_url_names_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="PSTACK_REDIS_URL='localhost:6379'"):
        Settings.from_env({"PSTACK_REDIS_URL": "localhost:6379"})


def test_every_setting_is_documented() -> None:
    doc = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text()
    documented = set(re.findall(r"`(PSTACK_[A-Z_]+)`", doc))
    assert documented == set(setting_names())


def test_numbers_name_the_variable_and_the_allowed_range() -> None:
    assert Settings.from_env({"PSTACK_RELAY_IDLE": "0"}).relay_idle == 0  # 0 turns relay reuse off
    assert Settings.from_env({"PSTACK_RELAY_IDLE": "2.5"}).relay_idle == 2.5
    with pytest.raises(ConfigurationError, match=r"PSTACK_RELAY_IDLE='-1': must be 0 or more"):
        Settings.from_env({"PSTACK_RELAY_IDLE": "-1"})
    with pytest.raises(ConfigurationError, match=r"PSTACK_HEARTBEAT_TTL='0': must be greater than 0"):
        Settings.from_env({"PSTACK_HEARTBEAT_TTL": "0"})
    with pytest.raises(ConfigurationError, match=r"PSTACK_ENGINE_CPU_LIMIT='-5': must be 0 or more"):
        Settings.from_env({"PSTACK_ENGINE_CPU_LIMIT": "-5"})
    with pytest.raises(ConfigurationError, match=r"PSTACK_RELAY_IDLE='soon': expected a number"):
        Settings.from_env({"PSTACK_RELAY_IDLE": "soon"})
