"""``pytest --pstack-apps DIR``: the applications under test as pytest items (docs/testing.md).

Registered by the ``pytest11`` entry point's shim (the top-level ``pstack_pytest`` module) only
when the option is given.  Each ``X.xml`` (or ``X.xml.gz``) with a checker file in DIR is collected as one item per
engine type and region split, ``X[engine-regions]``, so users' CI gets pytest's reporting,
``-k``, ``-x``, ``--junitxml`` and xdist.  An item runs its application on the fleet of
``PSTACK_REDIS_URL``, or on an embedded stack brought up once per session (on the first item
that runs, so ``--collect-only`` starts nothing), and fails with each failing check's docstring
and message.  A broken checker file is a collection error of one line.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from pstack_tasks.config import settings
from pstack_tasks.exceptions import PstackError
from pstack_tasks.fleet.app_pairs import AppPair, checker_of
from pstack_tasks.fleet.app_runs import NOT_SIMULATORS, Case, online_engines, plan, prepare, run_case
from pstack_tasks.graph.app_file import app_name, is_app_file
from pstack_tasks.ui.app_report import split_text


class AppCheckFailed(Exception):
    """An application's checks failed, or its process did: the text says which and why."""


class AppTesting:
    """The plugin's state for one session: the directories, the engine types, the embedded stack."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.dirs = [Path(d).resolve() for d in config.getoption("pstack_apps")]
        for d in self.dirs:
            if not d.is_dir():
                raise pytest.UsageError(f"--pstack-apps {d}: no such directory")
        self.splits = int(config.getoption("pstack_splits"))
        self.seed = int(config.getoption("pstack_seed"))
        self.timeout = float(config.getoption("pstack_timeout"))
        self._engines: list[str] | None = None
        self._stack: ExitStack | None = None
        # the directories are collected as if given on the command line; pytest's default paths
        # (testpaths, the current directory) give way to them
        if config.args_source == pytest.Config.ArgsSource.ARGS:
            config.args += [str(d) for d in self.dirs]
        else:
            config.args[:] = [str(d) for d in self.dirs]

    def engines(self) -> list[str]:
        """--pstack-engine, else every engine type online (dummy excepted), else PSTACK_ENGINE."""
        if self._engines is None:
            asked = list(dict.fromkeys(self.config.getoption("pstack_engine")))
            if not settings().redis_url:
                self._engines = asked or [settings().engine]
            else:
                online = online_engines()
                for kind in asked:
                    if kind not in online:
                        raise pytest.UsageError(f"--pstack-engine {kind}: no engine worker of that type is online "
                                                f"(online: {', '.join(sorted(online)) or 'none'})")
                self._engines = asked or sorted(set(online) - NOT_SIMULATORS)
                if not self._engines:
                    raise pytest.UsageError("no engine worker that runs applications is online on the fleet of "
                                            "PSTACK_REDIS_URL (start one: pstack worker --engine psim)")
        return self._engines

    def ensure_fleet(self) -> None:
        """Bring up the embedded stack the first time an item runs, when there is no fleet."""
        if self._stack is not None or settings().redis_url:
            return
        from pstack_tasks.worker.local import LocalStack
        self._stack = ExitStack()
        self._stack.enter_context(LocalStack(self.engines(), self.splits + 1))

    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
        if not is_app_file(file_path) or not any(file_path.resolve().is_relative_to(d) for d in self.dirs):
            return None
        py = checker_of(file_path)
        if py is None:
            return None
        app: AppFile = AppFile.from_parent(parent, path=file_path)
        app.plugin, app.pair = self, AppPair(app_name(file_path), file_path, py)
        return app

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None


class AppFile(pytest.File):
    """An application file: one item per engine type and region split."""

    plugin: AppTesting
    pair: AppPair

    def collect(self) -> Iterator[pytest.Item]:
        app = prepare(self.pair)
        if app.error is not None:
            raise self.CollectError(app.error)
        try:
            engines = self.plugin.engines()
        except PstackError as e:  # Redis unreachable: one line, not a traceback
            raise self.CollectError(str(e)) from None
        for case in plan([app], engines, self.plugin.splits, self.plugin.seed):
            item: AppItem = AppItem.from_parent(self, name=case.id)
            item.case = case
            yield item


class AppItem(pytest.Item):
    """One application run on one engine type in one split, and its checks."""

    case: Case

    def runtest(self) -> None:
        plugin = self.parent.plugin  # type: ignore[union-attr]
        plugin.ensure_fleet()
        result = run_case(self.case, plugin.timeout)
        self.user_properties.append(("split", split_text(result)))
        self.user_properties += [(o.doc, "PASS" if o.passed else f"FAIL: {o.message}") for o in result.outcomes]
        if result.error is not None:
            raise AppCheckFailed(f"{self.case.id}: {result.error}")
        if result.failures:
            lines = [f"{self.case.id} ({self.case.engine}, {split_text(result)}):"]
            lines += [f"FAIL {o.doc}: {o.message}" for o in result.failures]
            raise AppCheckFailed("\n".join(lines))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, AppCheckFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, self.name
