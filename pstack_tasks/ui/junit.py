"""JUnit XML for CI from ``pstack test``'s results (the schema Jenkins, GitLab and GitHub read).

One ``<testcase>`` per app x engine x split: ``classname`` is the app, ``name`` the case id
(``app[engine-regions]``).  A failing check is a ``<failure>`` (every failing check of the case in
its text); a case that could not be checked (its process failed, its checker file is broken) is
an ``<error>``.  The region map is in ``<system-out>`` so a failing split can be run again.
"""
from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Sequence
from xml.etree import ElementTree as ET

from pstack_tasks.fleet.app_runs import CaseResult
from pstack_tasks.ui.app_report import detail


def testcase(r: CaseResult) -> ET.Element:
    case = r.case
    el = ET.Element("testcase", classname=case.app.pair.name,
                    name=case.id if case.split.regions else case.app.pair.name,
                    file=str(case.app.pair.xml), time=f"{r.run_seconds + r.check_seconds:.3f}")
    if r.error is not None:
        ET.SubElement(el, "error", message=r.error, type="error").text = r.error
    elif r.failures:
        text = "\n".join(f"{o.doc} ({o.name}): {o.message}" for o in r.failures)
        ET.SubElement(el, "failure", message=detail(r), type="AssertionError").text = text
    if case.split.regions:
        out = [f"engine {case.engine}, {case.split.regions} region(s), rmap {json.dumps(dict(case.split.rmap))}"]
        out += [f"{'PASS' if o.passed else 'FAIL'} {o.doc}" + (f": {o.message}" if o.message else "")
                for o in r.outcomes]
        ET.SubElement(el, "system-out").text = "\n".join(out)
    return el


def junit_xml(results: Sequence[CaseResult], seconds: float, name: str = "pstack test") -> bytes:
    """The results as a JUnit XML document."""
    failures = sum(1 for r in results if r.error is None and not r.passed)
    errors = sum(1 for r in results if r.error is not None)
    suite = ET.Element("testsuite", name=name, tests=str(len(results)), failures=str(failures),
                       errors=str(errors), skipped="0", time=f"{seconds:.3f}",
                       timestamp=time.strftime("%Y-%m-%dT%H:%M:%S"), hostname=socket.gethostname())
    for r in results:
        suite.append(testcase(r))
    root = ET.Element("testsuites", name=name, tests=str(len(results)), failures=str(failures),
                      errors=str(errors), time=f"{seconds:.3f}")
    root.append(suite)
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data


def write_junit(path: str | os.PathLike[str], results: Sequence[CaseResult], seconds: float) -> None:
    """Write the JUnit XML file (its directory must exist)."""
    with open(path, "wb") as f:
        f.write(junit_xml(results, seconds) + b"\n")
