"""The pytest plugin's entry point (``pytest11``): its options, and nothing else unless asked.

pytest loads every installed plugin at start-up, in every project of the environment.  This
module is top-level and imports only pytest, so a test run that does not ask for
``--pstack-apps`` pays nothing for it (importing ``pstack_tasks`` costs half a second: lxml,
jinja2).  With the option, :mod:`pstack_tasks.ui.pytest_plugin` is registered and does the work
(docs/testing.md).
"""
from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pstack", "pstack applications under test (docs/testing.md)")
    group.addoption("--pstack-apps", action="append", default=[], metavar="DIR",
                    help="Collect the applications in DIR (X.xml with checker file X.py) as test items.")
    group.addoption("--pstack-engine", action="append", default=[], metavar="TYPE",
                    help="Engine type to run them on (repeatable; default: every type online, dummy "
                         "excepted; without PSTACK_REDIS_URL: PSTACK_ENGINE, psim).")
    group.addoption("--pstack-splits", type=int, default=2, metavar="K",
                    help="Random region splits besides one region (default 2: of 2 and 3 regions).")
    group.addoption("--pstack-seed", type=int, default=0, metavar="S", help="Seed of the region splits.")
    group.addoption("--pstack-timeout", type=float, default=600.0, metavar="SECONDS",
                    help="Seconds an application may run before it is killed and fails.")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("pstack_apps"):
        from pstack_tasks.ui.pytest_plugin import AppTesting
        config.pluginmanager.register(AppTesting(config), "pstack-apps")
