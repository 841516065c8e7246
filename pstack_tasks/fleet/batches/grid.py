"""A batch's runs: the cartesian product of its grid's values, times its seeds, times ``runs``.

Pure functions, no Redis: what the command line's ``--set KEY=V1,V2`` and ``--seeds 1..8`` mean,
and the list of runs they make, each with its overrides (docs/batches.md, "What runs").
"""
from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pstack_tasks.exceptions import ConfigurationError
from pstack_tasks.graph.overrides import parse_assignment, parse_value

#: the most runs one batch may have: a typo in a range (``--seeds 1..1000000``) is refused, not queued
MAX_RUNS = 100_000

Grid = Mapping[str, Sequence[Any]]


@dataclass(frozen=True)
class RunSpec:
    """One run of a batch: its place, its grid point (``{key: value}``), run number and seed."""

    index: int
    params: dict[str, Any]
    run: int
    seed: Any = None

    def overrides(self, seed_key: str | None) -> dict[str, Any]:
        """What this run patches into the instance: its grid point, and its seed if it has one."""
        out = dict(self.params)
        if self.seed is not None and seed_key is not None:
            out[seed_key] = self.seed
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "params": self.params, "run": self.run, "seed": self.seed}


def expand(grid: Grid | None, runs: int = 1, seeds: Sequence[Any] | None = None) -> list[RunSpec]:
    """Every run: for each grid point (keys in the order given, the last varying fastest), each
    seed, ``runs`` times.

    Raises:
        ConfigurationError: ``runs`` < 1, a key with no values, or more than :data:`MAX_RUNS` runs.
    """
    grid = dict(grid or {})
    if runs < 1:
        raise ConfigurationError(f"runs must be at least 1, not {runs}")
    for key, values in grid.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            raise ConfigurationError(f"grid key {key!r}: give a list of values, not {values!r}")
        if not list(values):
            raise ConfigurationError(f"grid key {key!r} has no values")
    seed_list: list[Any] = list(seeds) if seeds else [None]
    total = runs * len(seed_list)
    for values in grid.values():
        total *= len(list(values))
    if total > MAX_RUNS:
        raise ConfigurationError(f"the batch would have {total} runs, more than the {MAX_RUNS} a batch may have")
    out: list[RunSpec] = []
    for point in itertools.product(*[list(v) for v in grid.values()]):
        params = dict(zip(grid, point))
        for seed in seed_list:
            for r in range(runs):
                out.append(RunSpec(len(out), params, r, seed))
    return out


def parse_seeds(text: str) -> list[int]:
    """``--seeds``: a range ``1..8`` (both ends included), a list ``1,5,9``, or one seed ``3``."""
    text = text.strip()
    try:
        if ".." in text:
            lo, _, hi = text.partition("..")
            first, last = int(lo), int(hi)
            if last < first:
                raise ConfigurationError(f"--seeds {text!r}: the range ends before it starts")
            if last - first >= MAX_RUNS:
                raise ConfigurationError(f"--seeds {text!r}: more than {MAX_RUNS} seeds")
            return list(range(first, last + 1))
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigurationError(f"--seeds {text!r}: expected a range such as 1..8 or a list such as 1,5,9") from None


def parse_set(text: str) -> tuple[str, list[Any]]:
    """``--set KEY=V1,V2,...``: the key and its values, each JSON or text; commas inside brackets,
    braces or quotes do not split (``device:n0.v=[1,2],[3,4]`` is two arrays)."""
    key, raw = parse_assignment(text)
    return key, [parse_value(part) for part in split_top_level(raw)]


def split_top_level(text: str) -> list[str]:
    """``text`` split at the commas that are outside brackets, braces and double quotes."""
    parts, depth, quoted, start = [], 0, False, 0
    for i, ch in enumerate(text):
        if quoted:
            quoted = ch != '"' or text[i - 1] == "\\"
        elif ch == '"':
            quoted = True
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def grid_from_sets(sets: Iterable[str]) -> dict[str, list[Any]]:
    """The grid of every ``--set`` given (a key given twice is refused)."""
    grid: dict[str, list[Any]] = {}
    for item in sets:
        key, values = parse_set(item)
        if key in grid:
            raise ConfigurationError(f"--set {key} is given twice: give its values in one --set, separated by commas")
        grid[key] = values
    return grid


__all__ = ["MAX_RUNS", "Grid", "RunSpec", "expand", "parse_seeds", "parse_set", "split_top_level", "grid_from_sets"]
