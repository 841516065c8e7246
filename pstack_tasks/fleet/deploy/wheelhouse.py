"""The wheels a host installs from: this package, built here, and its dependencies, cached.

Hosts need no package registry: ``pstack deploy`` copies these wheels over and the host's pip
installs with ``--no-index --find-links``.  The dependencies' wheels are built once per set of
requirements and Python version (``pip wheel``) into the user cache; this package's wheel is built
from the source tree each time (seconds).  ``--wheelhouse DIR`` uses a directory of wheels instead
(a host of another Python version or architecture needs wheels built there).
"""
from __future__ import annotations

import configparser
import hashlib
import importlib.util
import logging
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from pstack_tasks.exceptions import ConfigurationError

logger = logging.getLogger(__name__)
DIST = "pstack_celery"


@dataclass(frozen=True)
class Wheelhouse:
    """A directory of wheels, ``package`` among them; ``digest`` identifies the package's content."""

    path: Path
    package: Path
    digest: str

    @property
    def version(self) -> str:
        return self.package.name.split("-")[1]

    def wheels(self) -> list[Path]:
        return sorted(self.path.glob("*.whl"))


def source_tree() -> Path:
    """The checkout this package runs from (a wheel cannot be built from an installed copy)."""
    root = Path(__file__).resolve().parents[3]
    if not (root / "setup.cfg").is_file():
        raise ConfigurationError("pstack deploy builds its wheel from a source checkout, and this install is "
                                 "not one: give --wheelhouse DIR (pip wheel -w DIR pstack-celery)")
    return root


def content_digest(wheel: Path) -> str:
    """A hash of the wheel's files, not of the zip (whose timestamps change with every build)."""
    h = hashlib.sha256()
    with zipfile.ZipFile(wheel) as z:
        for name in sorted(z.namelist()):
            h.update(name.encode() + b"\0" + z.read(name) + b"\0")
    return h.hexdigest()[:16]


def from_directory(path: Path) -> Wheelhouse:
    """A wheelhouse the operator built (``--wheelhouse``), or one :func:`build` made."""
    packages = sorted(path.glob(f"{DIST}-*.whl"))
    if not packages:
        raise ConfigurationError(f"{path}: no {DIST}-*.whl in this wheelhouse")
    return Wheelhouse(path, packages[-1], content_digest(packages[-1]))


def _pip(*args: str) -> None:
    cmd = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check", *args]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ConfigurationError(f"building wheels failed: pip {' '.join(args[:2])}: {last}")


def _requirements(root: Path) -> list[str]:
    cfg = configparser.ConfigParser()
    cfg.read(root / "setup.cfg")
    raw = cfg.get("options", "install_requires", fallback="")
    return [line.strip() for line in raw.splitlines() if line.strip() and not line.strip().startswith("#")]


def dependencies(root: Path, cache: Path | None = None) -> Path:
    """The dependencies' wheels, built (or downloaded) once per requirements and Python version."""
    reqs = _requirements(root)
    key = hashlib.sha256("\n".join([sys.version, sys.platform, *reqs]).encode()).hexdigest()[:16]
    where = (cache or Path(platformdirs.user_cache_dir("pstack-celery"))) / "wheelhouse" / key
    if (where / ".complete").exists():
        return where
    logger.info("building the dependencies' wheels into %s", where)
    with tempfile.TemporaryDirectory(dir=where.parent if where.parent.exists() else None) as tmp:
        _pip("wheel", "--wheel-dir", tmp, *reqs)
        where.mkdir(parents=True, exist_ok=True)
        for wheel in Path(tmp).glob("*.whl"):
            shutil.copy2(wheel, where / wheel.name)
    (where / ".complete").touch()
    return where


def build(out: Path, cache: Path | None = None) -> Wheelhouse:
    """This package's wheel, built from the source tree, beside its dependencies' wheels in ``out``."""
    root = source_tree()
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob(f"{DIST}-*.whl"):
        old.unlink()
    isolation = ["--no-build-isolation"] if _has_build_tools() else []  # offline when it can
    _pip("wheel", "--no-deps", *isolation, "--wheel-dir", str(out), str(root))
    for wheel in dependencies(root, cache).glob("*.whl"):
        if not (out / wheel.name).exists():
            shutil.copy2(wheel, out / wheel.name)
    return from_directory(out)


def _has_build_tools() -> bool:
    """setuptools and wheel here: the wheel builds without fetching them into an isolated environment."""
    return all(importlib.util.find_spec(m) is not None for m in ("setuptools", "wheel"))


__all__ = ["Wheelhouse", "build", "dependencies", "from_directory", "content_digest", "source_tree"]
