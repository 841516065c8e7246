"""The process built-ins of pcli: run, block, ps, kill, status, engines, top, help.

Each is the Python API of :mod:`pstack_tasks.fleet.client` with the same arguments, returning the
same values, but shown as pcli users expect: results as pstack printed them, ``ps()`` and
``engines()`` as tables (still lists of dicts underneath).
"""
from __future__ import annotations

import builtins
import inspect
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from rich.console import Group
from rich.table import Table as RichTable
from rich.text import Text

from pstack_tasks.fleet import client
from pstack_tasks.ui.columns import Column, field
from pstack_tasks.ui.shell.comfort import interrupted
from pstack_tasks.ui.shell.display import Table, result_record
from pstack_tasks.ui.tables import echo, engine_table, process_table, table


def run(xml: str | bytes | os.PathLike[str], rmap: Mapping[str, int] | None = None,
        rcon: Mapping[int | str, str] | None = None, level: int = 1, verbose: bool = False,
        async_: bool = False, engine: str | None = None, options: Mapping[str, Any] | None = None,
        timeout: float | None = None, progress: bool = True, regions: int | None = None,
        group: str | None = None) -> Any:
    """Run an application (path or XML text) as a process; its result, or a Future with async_=True.

    Same arguments as pstack_tasks.run (docs/processes.md): rmap={device: region},
    rcon={region: host}, engine="psim"|"dummy"|..., options={"max_steps": ..., "seconds": ...},
    regions=K (split by METIS; the result's "partition" gives the cut and balance),
    group="lab" (default PSTACK_GROUP: workers started with --group serve only their groups').
    While it waits, one line shows the messages delivered so far (progress=False hides it).
    """
    if async_:
        return client.submit(xml, rmap=rmap, rcon=rcon, level=level, verbose=verbose, engine=engine, options=options,
                             regions=regions, group=group)
    seen: list[int] = []
    with _progress(progress and not verbose, seen) as update:
        try:
            return result_record(client.run(xml, rmap=rmap, rcon=rcon, level=level, verbose=verbose, engine=engine,
                                            options=options, timeout=timeout, progress=update, regions=regions,
                                            group=group))
        except KeyboardInterrupt:
            raise interrupted(seen[-1:]) from None


@contextmanager
def _progress(show: bool, seen: list[int] | None = None) -> Iterator[Callable[[dict[str, Any]], None] | None]:
    """pstack run's live line (rich's spinner on the terminal) while a built-in waits, if wanted;
    ``seen`` collects the pid it reports (for the message of a Ctrl-C)."""
    def note(rec: dict[str, Any]) -> None:
        if seen is not None and rec.get("pid") is not None and rec["pid"] not in seen:
            seen.append(int(rec["pid"]))
    if not show:
        yield note if seen is not None else None
        return
    from pstack_tasks.ui.progress import ProgressLine
    with ProgressLine() as line:
        def update(rec: dict[str, Any]) -> None:
            note(rec)
            line.update(rec)
        yield update


def block(futures: Any, timeout: float | None = None, progress: bool = True) -> Any:
    """Wait for a process (a Future or pid, or a list of them) to end; its result (or the list)."""
    with _progress(progress) as update:
        try:
            out = client.block(futures, timeout=timeout, progress=update)
        except KeyboardInterrupt:
            many = futures if isinstance(futures, (list, tuple)) else [futures]
            raise interrupted([f if isinstance(f, int) else f.pid for f in many]) from None
    return [result_record(r) for r in out] if isinstance(out, list) else result_record(out)


def ps(user: str | None = None, mine: bool = False, limit: int = 50, group: str | None = None) -> Table:
    """The newest processes as a table (pid, state, user, engine, regions, delivered, graph, reason, ...).

    Every user's by default; ``user="ann"`` or ``mine=True`` for one user's, ``group="lab"`` for one
    worker group's. The value is a list of dicts, newest first: ps()[0]["pid"],
    [p for p in ps() if p["state"] == "Running"].
    """
    from pstack_tasks.fleet.users import current_user
    procs = client.ps(user=current_user() if mine else user, limit=limit, group=group)
    return Table(procs, process_table(procs, client.engines()))


def kill(pid: int) -> str:
    """Kill a process; the state it ended in ("Killed", or how it had already ended)."""
    return client.kill(int(pid))


def status(pid: int) -> dict[str, Any]:
    """One process's record: state, user, regions, hosts, times, reason, ... ({} if unknown)."""
    return client.status(int(pid))


def engines() -> Table:
    """The engine workers of the fleet as a table: type, name, slots, busy, usage meter, status."""
    fleet = client.engines()
    return Table(fleet, engine_table(fleet))


def top() -> None:
    """Live full-screen view of engines and processes, refreshed 4 times a second; q quits."""
    from pstack_tasks.ui.top import run_top
    run_top()


def signature(fn: Callable[..., Any]) -> str:
    """``name(a, b=1)``: the call as typed, without type hints (they crowd a one-line table)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return "(...)"
    bare = [p.replace(annotation=inspect.Parameter.empty) for p in sig.parameters.values()]
    return str(sig.replace(parameters=bare, return_annotation=inspect.Signature.empty))


def short_signature(fn: Callable[..., Any], width: int = 36) -> str:
    """The signature cut to ``width`` characters at a parameter boundary (``run(xml, rmap=None, ...)``),
    so the table keeps one line per built-in in an ordinary terminal; help(x) shows it whole."""
    full = signature(fn)
    if len(full) <= width:
        return full
    params = full[1:-1].split(", ")
    kept: list[str] = []
    for p in params:
        if len("(" + ", ".join([*kept, p]) + ", ...)") > width and kept:
            break
        kept.append(p)
    return "(" + ", ".join([*kept, "..."]) + ")"


HELP_COLUMNS = (Column("BUILT-IN", field("call")), Column("WHAT IT DOES", field("doc", ""), free=True))


def summary(fns: Mapping[str, Callable[..., Any]]) -> RichTable:
    """A table of built-ins: name with (shortened) signature, and the first line of its docstring."""
    rows = []
    for name, fn in fns.items():
        doc = (inspect.getdoc(fn) or "").strip().splitlines()
        rows.append({"call": name + short_signature(fn), "doc": doc[0] if doc else ""})
    return table(HELP_COLUMNS, rows)


def make_help(fns: Mapping[str, Callable[..., Any]]) -> Callable[..., None]:
    """``help()`` lists the built-ins; ``help(x)`` is Python's own help."""
    def help(*args: Any, **kwargs: Any) -> None:
        """help() lists pcli's built-ins; help(x) is Python's help on x."""
        if args or kwargs:
            builtins.help(*args, **kwargs)
            return
        echo(Group(summary(fns), Text(""), Text("All of Python works too. help(run) shows one built-in in full; "
                                                "docs/pcli.md has examples.")))
    return help


PROCESS_BUILTINS: dict[str, Callable[..., Any]] = {
    "run": run, "block": block, "ps": ps, "kill": kill, "status": status, "engines": engines, "top": top,
}

