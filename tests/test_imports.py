"""No import cycles between nitrain's Python modules (STYLE.md), read from the source with ``ast``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import nitrain

ROOT = Path(nitrain.__file__).parent

#: Packages that must be free of cycles even counting imports made inside functions (a lazy import of a
#: module that imports the caller back is a cycle all the same, met later). trainers/ is left out while it
#: is redesigned: its keras.py and trainer.py imported each other inside functions.
NO_LAZY_CYCLES = ("loaders", "datasets", "samplers", "transforms", "models", "explainers")


def _module_name(path: Path) -> str:
    parts = ["nitrain", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path | None]:
    """Every module of the package: its ``.py`` file, or None for an extension module (``_core``, known by
    its stub), which imports nothing of nitrain."""
    found: dict[str, Path | None] = {_module_name(p): None for p in ROOT.rglob("*.pyi")}
    # a package wins over a module of the same name (``x/__init__.py`` over ``x.py``), as in Python
    found.update(
        {_module_name(p): p for p in sorted(ROOT.rglob("*.py"), key=lambda p: p.name == "__init__.py")}
    )
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(body: list[ast.stmt], lazy: bool):
    """The import statements run when the module is imported (``if``/``try``/``with`` blocks included,
    ``if TYPE_CHECKING:`` left out); with ``lazy``, those inside functions and classes too."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from _import_nodes(node.body, lazy)
            yield from _import_nodes(node.orelse, lazy)
        elif isinstance(node, ast.Try):
            for block in (node.body, *(h.body for h in node.handlers), node.orelse, node.finalbody):
                yield from _import_nodes(block, lazy)
        elif isinstance(node, ast.With):
            yield from _import_nodes(node.body, lazy)
        elif isinstance(node, ast.ClassDef):
            yield from _import_nodes(node.body, lazy)
        elif lazy and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield from _import_nodes(node.body, lazy)


def _targets(node: ast.stmt, module: str, is_package: bool, modules: dict) -> set[str]:
    """The nitrain modules an import statement imports: ``from a import b`` means module ``a.b`` when
    that is one, else ``a``. Parent packages run on the way are not counted (as usual for cycle checks)."""
    if isinstance(node, ast.Import):
        return {a.name for a in node.names if a.name in modules}
    base = node.module or ""
    if node.level:
        anchor = module.split(".")
        anchor = anchor if is_package else anchor[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join([*anchor, base] if base else anchor)
    found = set()
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        if sub in modules:
            found.add(sub)
        elif base in modules:
            found.add(base)
    return found


def import_graph(lazy: bool = False) -> dict[str, set[str]]:
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        if path is None:
            graph[name] = set()
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        edges = set()
        for node in _import_nodes(tree.body, lazy):
            edges |= _targets(node, name, is_package, modules)
        graph[name] = edges - {name}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
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
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _in(package: str, module: str) -> bool:
    return module == package or module.startswith(package + ".")


def _touching(cycles, packages) -> list[list[str]]:
    roots = [f"nitrain.{p}" for p in packages]
    return [c for c in cycles if any(_in(r, m) for r in roots for m in c)]


def test_graph_sees_known_edges():
    graph = import_graph()
    assert graph["nitrain._threads"] == {"nitrain._core"}  # ``from nitrain import _core``: the extension
    assert "nitrain._layout" in graph["nitrain.loaders.loader"]
    assert "nitrain.loaders.loader" in graph["nitrain.loaders"]
    assert "nitrain.loaders.torch" not in graph["nitrain.loaders._adapters"]  # lazy: inside to_torch
    assert "nitrain.loaders.torch" in import_graph(lazy=True)["nitrain.loaders._adapters"]


def test_cycle_finder():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_level_cycles():
    """Across the whole package, counting the imports run when a module is imported."""
    assert find_cycles(import_graph()) == []


@pytest.mark.parametrize("package", NO_LAZY_CYCLES)
def test_no_cycles_counting_lazy_imports(package):
    """E.g. the loader imports its adapters inside ``to_torch`` / ``to_keras`` / ``to_tensorflow``: the
    adapters must not import the loader back (they take the layout helpers from ``nitrain._layout``)."""
    assert _touching(find_cycles(import_graph(lazy=True)), [package]) == []


def test_layout_module_is_a_leaf():
    """The channel-layout helpers import no other nitrain module, so everything can build on them."""
    assert import_graph(lazy=True)["nitrain._layout"] == set()
