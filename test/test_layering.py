"""The package's layering, read from the source: no import cycles, and the run-time stays below training.

Every import of a project module counts, at module level or inside a function (an import placed inside a
function to dodge a cycle is still a cycle). Run time is what the node loads: ``kp3d_ros.node`` and every
module of ``kp3d_core.inference``; it must never reach training, mapping fits, evaluation, benchmarks or the
synthetic studio.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("kp3d_core", "kp3d_ros", "training")
RUNTIME_ROOTS = ("kp3d_ros.node", "kp3d_core.inference")
# Offline work: what fits, evaluates, renders or benchmarks. Run-time modules import none of it.
OFFLINE = (
    "kp3d_core.train", "kp3d_core.losses", "kp3d_core.augment", "kp3d_core.data", "kp3d_core.models.decoder",
    "kp3d_core.models.discovery", "kp3d_core.models.synthetic", "kp3d_core.models.skeleton_head", "kp3d_core.models.physique",
    "kp3d_core.mas", "kp3d_core.cascade", "kp3d_core.geodesic", "kp3d_core.evaluate", "kp3d_core.fit_mapping",
    "kp3d_core.bench", "kp3d_core.lift", "kp3d_core.studio", "kp3d_core.plots", "kp3d_ros.demo", "kp3d_ros.bench",
    "kp3d_ros.bench_node", "training",
)


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules that ``name`` imports anywhere in its source (a package's own submodules resolved)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from pkg import sub` imports the submodule when there is one
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in modules else module for a in node.names]
        else:
            continue
        found.update(t for t in targets if t in modules and t != name)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, comps, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return comps


def _parents(name: str) -> list[str]:
    """The packages whose ``__init__`` runs when ``name`` is imported."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _closure(graph: dict[str, set[str]], roots: list[str]) -> dict[str, str]:
    """Every module loaded by importing ``roots``, each with the module that first pulled it in."""
    seen = {r: "(root)" for r in roots}
    todo = list(roots)
    while todo:
        v = todo.pop()
        for w in sorted(graph[v] | {p for p in _parents(v) if p in graph}):
            if w not in seen:
                seen[w] = v
                todo.append(w)
    return seen


def _is_offline(name: str) -> bool:
    return any(name == o or name.startswith(o + ".") for o in OFFLINE)


def test_the_graph_sees_function_level_imports_and_packages():
    graph = _graph()
    assert "kp3d_core.inference.estimator" in graph and "kp3d_ros.node" in graph
    # estimator imports its mapping at module level; fit_mapping imports evaluate: both edges are seen
    assert "kp3d_core.models.mapping" in graph["kp3d_core.inference.estimator"]
    assert "kp3d_core.evaluate" in graph["kp3d_core.fit_mapping"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    cycles = _cycles(_graph())
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("root", RUNTIME_ROOTS)
def test_run_time_imports_nothing_offline(root):
    graph = _graph()
    roots = [m for m in graph if m == root or m.startswith(root + ".")]
    loaded = _closure(graph, roots)
    bad = {m: by for m, by in loaded.items() if _is_offline(m)}
    assert not bad, "run-time modules import offline work: " + ", ".join(f"{m} (from {by})" for m, by in sorted(bad.items()))
