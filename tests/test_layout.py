"""The package reads as the pipeline: stage packages that import only downwards, no import
cycles (imports inside functions count), no module or function too big to read."""
from __future__ import annotations

import ast
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
# Highest first: a stage may import the stages below it and the core modules, never above.
STAGES = ["ui", "worker", "fleet", "native", "graph"]
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("pstack_tasks", "engines", cache_dir=None)


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_module_imports_another_that_imports_it_back(graph: grimp.ImportGraph) -> None:
    assert _cycles(graph) == []


def test_stages_import_only_downwards(graph: grimp.ImportGraph) -> None:
    wrong = []
    for i, stage in enumerate(STAGES):
        for higher in STAGES[:i]:
            chain = graph.find_shortest_chain(importer=f"pstack_tasks.{stage}", imported=f"pstack_tasks.{higher}",
                                              as_packages=True)
            if chain:
                wrong.append(" -> ".join(chain))
    assert wrong == []


def test_core_modules_import_no_stage(graph: grimp.ImportGraph) -> None:
    core = [m for m in graph.find_children("pstack_tasks") if m.rsplit(".", 1)[1] not in STAGES]
    wrong = [f"{m} -> {i}" for m in core for i in graph.find_modules_directly_imported_by(m)
             if any(i.startswith(f"pstack_tasks.{s}") for s in STAGES)]
    assert wrong == []


def test_the_package_never_imports_an_engine_implementation(graph: grimp.ImportGraph) -> None:
    wrong = [f"{m} -> {i}" for m in graph.find_descendants("pstack_tasks")
             for i in graph.find_modules_directly_imported_by(m) if i.split(".")[0] == "engines"]
    assert wrong == []


def _python_files() -> list[Path]:
    return sorted([*ROOT.glob("pstack_tasks/**/*.py"), *ROOT.glob("engines/**/*.py")])


def test_modules_are_small() -> None:
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in _python_files()}
    big = {name: n for name, n in sizes.items() if n > MAX_MODULE_LINES}
    assert big == {}


def test_functions_are_short() -> None:
    long = []
    for path in _python_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    assert long == []
