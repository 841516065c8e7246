"""The optional terminal libraries: what needs them, and the one-line error when they are missing.

A worker-only install (``pip install pstack-celery``) leaves out ptpython, prompt_toolkit and rich;
pcli, ``pstack top`` and the progress line need them, from the ``shell`` extra
(``pip install 'pstack-celery[shell]'``; the README's setup installs every extra).
"""
from __future__ import annotations

import importlib.util

from pstack_tasks.exceptions import ConfigurationError

#: the import names of the ``shell`` extra's libraries
SHELL_MODULES = ("ptpython", "prompt_toolkit", "rich")


def missing(modules: tuple[str, ...] = SHELL_MODULES) -> list[str]:
    """The modules of ``modules`` that this environment cannot import."""
    return [m for m in modules if importlib.util.find_spec(m) is None]


def require_shell(what: str) -> None:
    """Fail with one line naming the extra when the terminal libraries are not installed."""
    gone = missing()
    if gone:
        raise ConfigurationError(f"{what} needs {', '.join(gone)}, which this installation lacks: "
                                 "pip install 'pstack-celery[shell]'")
