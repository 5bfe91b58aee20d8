"""The package's import graph, read with the standard library's ``ast``.

Every ``import`` and ``from … import`` of every module counts, also those inside functions
(a lazy import is still a dependency). The test fails on any import circle between modules and
on any production module importing the test support in ``polaronflow.testing``.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "polaronflow"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest known module that ``name`` names or lies in."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (anywhere in its body)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{anchor}.{base}" if base else anchor
                # `from a.b import c` may import the module a.b.c
                candidates = [f"{base}.{alias.name}" for alias in node.names] or [base]
            else:
                continue
            for candidate in candidates:
                if not candidate.startswith("polaronflow"):
                    continue
                target = _resolve(candidate, modules)
                if target and target != name:
                    targets.add(target)
        graph[name] = targets
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_lazy_and_relative_imports():
    graph = import_graph()
    # a function-level import (the campaign's seed job imports the plan lazily)
    assert "polaronflow.workflows.campaign.plan" in graph["polaronflow.workflows.campaign.maker"]
    assert "polaronflow.naming" in graph["polaronflow.analysis.reproduce"]
    assert len(graph) > 60


def test_no_import_circles():
    cycles = _cycles(import_graph())
    assert not cycles, "import circles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_production_module_imports_the_test_support():
    offenders = {
        module: sorted(t for t in targets if t.startswith("polaronflow.testing"))
        for module, targets in import_graph().items()
        if not module.startswith("polaronflow.testing")
    }
    offenders = {m: t for m, t in offenders.items() if t}
    assert not offenders, f"production modules importing polaronflow.testing: {offenders}"


def test_layers_point_one_way():
    """naming is a leaf; analysis and structures never import workflows or the emulator."""
    graph = import_graph()
    assert not graph["polaronflow.naming"]
    for module, targets in graph.items():
        if module.startswith(("polaronflow.analysis", "polaronflow.structures")):
            bad = [
                t
                for t in targets
                if t.startswith(("polaronflow.workflows", "polaronflow.emulator"))
            ]
            assert not bad, f"{module} imports {bad}"
        if module.startswith("polaronflow.workflows.vasp"):
            bad = [t for t in targets if t.startswith("polaronflow.workflows.")]
            bad = [t for t in bad if not t.startswith("polaronflow.workflows.vasp")]
            assert not bad, f"{module} (one VASP job) imports {bad}"
        if module.startswith("polaronflow.workflows.campaign"):
            bad = [t for t in targets if t.startswith("polaronflow.workflows.runtime")]
            assert not bad, f"{module} imports the runtime layer: {bad}"
