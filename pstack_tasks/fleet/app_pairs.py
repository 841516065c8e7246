"""Finding the applications under test: ``X.xml`` (or ``X.xml.gz``) with its checker file ``X.py``.

The checker file sits beside the application (``apps/ring.xml`` + ``apps/ring.py``) or, as in
pstack's own test tree, in a ``checks/`` directory beside it (``tests/ring.xml`` +
``tests/checks/ring.py``).  A directory is searched recursively (hidden directories, virtual
environments and caches are skipped); an application without a checker file there is not under
test.  A file named on the command line must have one.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pstack_tasks.exceptions import ConfigurationError
from pstack_tasks.graph.app_file import APP_SUFFIXES, app_name, is_app_file

#: directories never searched for applications
SKIP_DIRS = frozenset({"__pycache__", "node_modules", "site-packages", "venv"})
#: the directory of checker files in pstack's layout
CHECKS_DIR = "checks"


@dataclass(frozen=True)
class AppPair:
    """An application under test: its name (:func:`app_name`), its xml and its checker file."""

    name: str
    xml: Path
    py: Path


def checker_of(xml: Path) -> Path | None:
    """The checker file of ``xml``: ``X.py`` beside it, else ``checks/X.py`` beside it."""
    name = app_name(xml)
    for py in (xml.parent / f"{name}.py", xml.parent / CHECKS_DIR / f"{name}.py"):
        if py.is_file():
            return py
    return None


def application_of(py: Path) -> Path | None:
    """The application a checker file belongs to: ``X.xml`` (or ``X.xml.gz``) beside it, or one
    level up from ``checks/``."""
    for where in (py.parent, py.parent.parent):
        for suffix in APP_SUFFIXES:
            xml = where / f"{py.stem}{suffix}"
            if xml.is_file() and (where == py.parent or py.parent.name == CHECKS_DIR):
                return xml
    return None


def _walk(root: Path) -> Iterable[Path]:
    for here, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS)
        for f in sorted(files):
            if is_app_file(f):
                yield Path(here) / f


def _pair(path: Path) -> AppPair:
    """The pair a file named by the user stands for (its xml or its checker file)."""
    if path.suffix == ".py":
        xml = application_of(path)
        if xml is None:
            raise ConfigurationError(f"{path}: no application {path.stem}.xml beside this checker file "
                                     f"(or beside its {CHECKS_DIR}/ directory)")
        return AppPair(app_name(xml), xml, path)
    py = checker_of(path)
    if py is None:
        raise ConfigurationError(f"{path}: no checker file {app_name(path)}.py beside it "
                                 f"(or in {CHECKS_DIR}/ beside it)")
    return AppPair(app_name(path), path, py)


def find_apps(paths: Iterable[str | os.PathLike[str]]) -> list[AppPair]:
    """Every application under test in ``paths`` (directories, xml or checker files), each once.

    Two applications of the same name in different directories are told apart by their path.
    """
    found: dict[Path, AppPair] = {}
    for p in map(Path, paths):
        if p.is_dir():
            for xml in _walk(p):
                py = checker_of(xml)
                if py is not None:
                    found.setdefault(xml.resolve(), AppPair(app_name(xml), xml, py))
        elif p.is_file():
            pair = _pair(p)
            found.setdefault(pair.xml.resolve(), pair)
        else:
            raise ConfigurationError(f"{p}: no such file or directory")
    apps = list(found.values())
    stems = [a.name for a in apps]
    return [a if stems.count(a.name) == 1 else AppPair(str(a.xml.parent / a.name), a.xml, a.py) for a in apps]


def select(apps: Iterable[AppPair], expr: str | None) -> list[AppPair]:
    """The applications whose name contains ``expr`` (``-k``; case-insensitive; all without one)."""
    if not expr:
        return list(apps)
    return [a for a in apps if expr.lower() in a.name.lower()]
