"""The import graph of the core and the built-in plugins has no circle: each module can be read,
tested and changed from its imports down (issue "One place for each thing")."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def import_graph() -> dict[str, set[str]]:
    """module -> the modules of this repository it imports (anywhere in its code, lazily or not)."""
    files = {}
    for top in (ROOT / "harness", *sorted((ROOT / "plugins").glob("bench_*"))):
        for path in top.rglob("*.py"):
            parts = path.relative_to(top.parent).with_suffix("").parts
            files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {m: set() for m in files}
    for module, path in files.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                target = ".".join(base + [node.module] if node.module else base)
                names = [target] + [f"{target}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            graph[module] |= {n for n in names if n in files and n != module}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_import_graph_has_no_circle():
    graph = import_graph()
    assert len(graph) > 40 and "harness.cli.commands" in graph and "bench_runs.train" in graph
    assert circles(graph) == []


def test_the_circle_finder_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_built_in_plugin_imports_another():
    """Each built-in plugin leans on the core only (what they share lives there: step acceleration in
    harness.run.acceleration, step sharing declared as a capability), as a third-party plugin would."""
    crossing = sorted((m, t) for m, targets in import_graph().items() if m.startswith("bench_")
                      for t in targets if t.startswith("bench_") and t.split(".")[0] != m.split(".")[0])
    assert crossing == []


#: The core in floors, lowest first (README of harness/ subpackages): a module imports only from its
#: own floor or the floors below. The top package `harness` is a facade (it re-exports the API and
#: lends RunContext lazily) and stands outside the floors.
LAYERS = [("harness.api",), ("harness.suite", "harness.plugins"), ("harness.results",), ("harness.run",),
          ("harness.conformance", "bench_"), ("harness.cli",)]


def layer(module: str) -> int | None:
    for floor, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p if p.endswith("_") else p + ".") for p in prefixes):
            return floor
    return None


def upward_imports(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    return sorted((m, t) for m, targets in graph.items() for t in targets
                  if layer(m) is not None and layer(t) is not None and layer(t) > layer(m))


def test_every_module_of_the_core_has_a_floor():
    graph = import_graph()
    assert sorted(m for m in graph if layer(m) is None) == ["harness"]


def test_imports_only_point_down():
    assert upward_imports(import_graph()) == []


def test_an_upward_import_is_found():
    graph = {"harness.api.model": {"harness.run.context"}, "harness.run.context": {"harness.api.model"}}
    assert upward_imports(graph) == [("harness.api.model", "harness.run.context")]


def test_the_core_knows_no_plugin_by_name():
    assert sorted((m, t) for m, ts in import_graph().items() if m.startswith("harness")
                  for t in ts if t.startswith("bench_")) == []


def test_a_module_of_the_old_flat_core_names_its_new_place():
    """A plugin written for 0.1 (harness.model, harness.testing, ...) is told where the module went."""
    import importlib

    import harness

    for old, new in harness.MOVED.items():
        importlib.import_module(new)  # every new place exists
        try:
            importlib.import_module(f"harness.{old}")
        except ModuleNotFoundError as exc:
            assert f"harness.{old} moved to {new}" in str(exc)
        else:
            assert old == "suite", old  # the one old name that is a new package (harness.suite)
