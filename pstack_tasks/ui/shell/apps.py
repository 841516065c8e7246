"""pstack's application helpers in pcli: pp, read, devices, messages, instance, unit.

``xml`` is always what ``run`` takes: a file path or XML text (from ``read``).  Parsing goes
through :func:`loader.load`, so a bad file fails here with the same ``GraphError`` (file:line)
that ``run`` would give, before anything is queued.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.text import Text

from pstack_tasks.exceptions import ConfigurationError, ProcessError
from pstack_tasks.fleet.app_pairs import application_of, checker_of
from pstack_tasks.fleet.app_view import AppView
from pstack_tasks.fleet.checkers import apply, collect, load_module
from pstack_tasks.graph import loader
from pstack_tasks.graph.app_file import app_name, read_text
from pstack_tasks.graph.model import Array, Field, FieldType, Scalar, Struct
from pstack_tasks.ui.columns import Column, Row, field
from pstack_tasks.ui.shell.display import Record, Table
from pstack_tasks.ui.tables import table

if TYPE_CHECKING:
    from pstack_tasks.fleet.client import Future

#: names shown by devices() before it is cut short (the value keeps them all)
MAX_NAMES = 20

MESSAGE_COLUMNS = (Column("MESSAGE TYPE", field("id")), Column("BYTES", field("bytes"), "right"),
                   Column("PAYLOAD", field("payload"), free=True))


def _pins(name: str) -> Callable[[Row], str]:
    return lambda t: ",".join(t[name]) or "-"


DEVICE_TYPE_COLUMNS = (Column("DEVICE TYPE", field("id")), Column("DEVICES", field("devices"), "right"),
                       Column("INPUTS", _pins("inputs")), Column("OUTPUTS", _pins("outputs")),
                       Column("STATE", field("state"), free=True))
CHECK_COLUMNS = (Column("CHECK", field("check")),
                 Column("RESULT", lambda r: "pass" if r["passed"] else "FAIL",
                        style=lambda r: "green" if r["passed"] else "bold red"),
                 Column("DETAIL", field("detail", ""), free=True))


def read(path: str | os.PathLike[str]) -> str:
    """The text of a file (e.g. xml = read("app.xml"); run(xml)); of a gzip file, its XML."""
    try:
        return read_text(path)
    except OSError as e:
        raise ConfigurationError(f"cannot read {os.fspath(path)}: {e.strerror}") from None


def pp(obj: Any) -> None:
    """Pretty-print any value (results, records, states) with indentation and colour."""
    from rich.pretty import pprint
    pprint(obj, indent_guides=False)


class Names(list):  # type: ignore[type-arg]
    """Device names that print as a short summary (an instance may have millions)."""

    def __str__(self) -> str:
        head = ", ".join(self[:MAX_NAMES])
        more = f", ... ({len(self)} in all)" if len(self) > MAX_NAMES else f" ({len(self)} devices)"
        return f"[{head}{more}]"

    def __pt_repr__(self) -> str:
        return str(self)


def devices(xml: str | os.PathLike[str]) -> Names:
    """The device names of an application, in file order (e.g. to build an rmap)."""
    return Names(loader.load(xml).instance.names)


def _field(f: Field) -> str:
    return f"{_ftype(f.type)} {f.name}" + (f"[{f.type.length}]" if isinstance(f.type, Array) else "")


def _ftype(t: FieldType) -> str:
    if isinstance(t, Scalar):
        return t.cname or t.ctype
    if isinstance(t, Array):
        return _ftype(t.element)
    return t.cname or "struct {" + "; ".join(_field(m) for m in t.members) + "}"


def fields(s: Struct) -> str:
    """A struct as C-like declarations: ``uint32_t src, uint32_t dst``."""
    return ", ".join(_field(f) for f in s.fields) or "-"


def messages(xml: str | os.PathLike[str]) -> Table:
    """The message types of an application: id and payload fields (a list of dicts)."""
    gt = loader.load(xml).graph_type
    rows = [{"id": m.id, "payload": fields(m.payload), "bytes": m.payload.size} for m in gt.message_types]
    return Table(rows, table(MESSAGE_COLUMNS, rows))


def instance(xml: str | os.PathLike[str]) -> Record:
    """A summary of an application: graph type, instance, devices and edges, and its device types."""
    app = loader.load(xml)
    gt, inst = app.graph_type, app.instance
    types: list[dict[str, Any]] = [{"id": d.id, "devices": inst.counts[i] if i < len(inst.counts) else 0,
              "inputs": [p.name for p in d.input_pins], "outputs": [p.name for p in d.output_pins],
              "state": fields(d.state), "properties": fields(d.properties)} for i, d in enumerate(gt.device_types)]
    data = {"file": app.file, "graph_type": gt.id, "version": gt.version, "instance": inst.id,
            "devices": inst.device_count, "edges": inst.edge_count,
            "message_types": [m.id for m in gt.message_types], "device_types": types}
    head = (f"graph type {gt.id} (graph-schema v{gt.version}), instance {inst.id or '-'} from {app.file}\n"
            f"{inst.device_count} devices, {inst.edge_count} edges, message types: "
            + ", ".join(m.id for m in gt.message_types) + "\n")
    return Record(data, Group(Text(head), table(DEVICE_TYPE_COLUMNS, types)))


def _pair(path: str | os.PathLike[str]) -> tuple[Path, Path | None]:
    """(checker file, application .xml) from either one: ``app.py`` (in ``checks/`` or not) or ``app.xml``."""
    p = Path(path)
    if p.suffix == ".py":
        if not p.is_file():
            raise ConfigurationError(f"no checks file {p} (unit() pairs app.xml with app.py)")
        return p, application_of(p)
    py = checker_of(p)
    if py is None:
        raise ConfigurationError(f"no checks file {p.parent / app_name(p)}.py (unit() pairs app.xml with app.py "
                                 "or checks/app.py)")
    return py, p


def unit(py: str | os.PathLike[str], result: Mapping[str, Any] | Future | int | None = None,
         rmap: Mapping[str, int] | None = None, engine: str | None = None,
         options: Mapping[str, Any] | None = None) -> Table:
    """Run an application and apply its checks (pstack's tests); a pass/fail table.

    ``py`` is the checker file (or its application's .xml): functions that take the result (and
    optionally the application) and assert; ``check_*`` ones if it has any (docs/testing.md).
    The application is the module's ``APP`` (relative to the file) or the .xml of the same name;
    ``RMAP``, ``ENGINE`` and ``OPTIONS`` in the module are defaults for the arguments.
    ``unit(py, result)`` checks a result (or a Future's, or a pid's) without running again.
    """
    from pstack_tasks.fleet.client import Future, block
    from pstack_tasks.fleet.client import run as run_process
    checks_file, xml = _pair(py)
    module = load_module(checks_file)
    if getattr(module, "APP", None):
        xml = checks_file.parent / module.APP
    if xml is None:
        raise ConfigurationError(f"no application {checks_file.stem}.xml for {checks_file} (or set APP in it)")
    checks = collect(module)
    view = AppView(loader.load(str(xml)))
    rows: list[dict[str, Any]] = []
    if isinstance(result, (Future, int)):
        result = block(result)
    if result is None:
        try:
            result = run_process(str(xml), rmap=rmap if rmap is not None else getattr(module, "RMAP", None),
                                 engine=engine or getattr(module, "ENGINE", None),
                                 options=options if options is not None else getattr(module, "OPTIONS", None))
        except ProcessError as e:
            rows.append({"check": "run", "passed": False, "detail": str(e)})
        else:
            rows.append({"check": "run", "passed": True, "detail": f"process {result.get('pid')}"})
    if result is not None:
        rows += [{"check": o.doc, "passed": o.passed, "detail": o.message} for o in apply(checks, result, view)]
    passed = sum(r["passed"] for r in rows)
    return Table(rows, Group(table(CHECK_COLUMNS, rows), Text(f"{xml.name}: {passed}/{len(rows)} passed")))
