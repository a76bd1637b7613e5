"""The packages under harness/ import one another without cycles, and no package reaches into
another's private names: the layers stay layers as the code grows."""

from __future__ import annotations

import ast
from pathlib import Path

import harness

ROOT = Path(harness.__file__).parent


def package_of(path: Path) -> str:
    """`harness/caller/call.py` → caller; a top-level module `harness/clock.py` → clock."""
    rel = path.relative_to(ROOT).with_suffix("").parts
    return "harness" if rel == ("__init__",) else rel[0]


def imports_of(path: Path) -> list[tuple[str, list[str], int]]:
    """Every `harness.*` import in a file, module-level or inside functions alike (a lazy
    import dodges a cycle at import time but is still a cycle in the design)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names if a.name.startswith("harness.")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("harness."):
            out.append((node.module, [a.name for a in node.names], node.lineno))
    return out


def package_graph() -> dict[str, dict[str, str]]:
    """package → {imported package: where (file:line)}."""
    graph: dict[str, dict[str, str]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        src = package_of(path)
        for module, _, line in imports_of(path):
            dst = module.split(".")[1]
            if dst != src:
                graph.setdefault(src, {}).setdefault(dst, f"{path.relative_to(ROOT.parent)}:{line}")
    return graph


def find_cycle(graph: dict[str, dict[str, str]]) -> list[str] | None:
    """One cycle as a list of nodes (first repeated last), or None for a DAG."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle_and_passes_a_dag():
    assert find_cycle({"a": {"b": ""}, "b": {"c": ""}, "c": {"a": ""}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b": "", "c": ""}, "b": {"c": ""}}) is None


def test_no_import_cycle_between_packages():
    graph = package_graph()
    cycle = find_cycle(graph)
    where = [f"{a} → {b} ({graph[a][b]})" for a, b in zip(cycle, cycle[1:])] if cycle else []
    assert cycle is None, "import cycle: " + "; ".join(where)


def test_the_low_layers_import_nothing_above_them():
    graph = package_graph()
    low = {"errors": set(), "clock": set(), "resources": {"errors"}, "audio": {"errors", "resources"}, "records": {"audio"},
           "playout": {"audio", "records"}}
    for package, allowed in low.items():
        assert set(graph.get(package, {})) <= allowed, f"{package} imports {graph.get(package)}"


def test_no_package_imports_another_packages_private_names():
    bad = []
    for path in sorted(ROOT.rglob("*.py")):
        for module, names, line in imports_of(path):
            if module.split(".")[1] == package_of(path):
                continue
            bad += [f"{path.relative_to(ROOT.parent)}:{line} {module}.{n}" for n in names if n.startswith("_")]
    assert not bad, bad
