"""The layering of `hanlin`, checked on the real imports of src/hanlin.

Every `import` and `from ... import` anywhere in a module counts — at the top, inside functions,
inside `try` blocks — because a function-level import still ties the two modules together; it
only hides the cycle until the function runs. Imports under `if TYPE_CHECKING:` are left out:
they never execute, and annotations are the one place a lower layer may name a higher one's type.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import hanlin

SRC = Path(hanlin.__file__).resolve().parent
ROOT = "hanlin"

# The top floor: nothing below imports them. The old MCP server paths count as a surface until
# they move to `hanlin.mcpserver`; `python -m hanlin` is the CLI.
SURFACES = (
    "hanlin.__main__",
    "hanlin.cli",
    "hanlin.server",
    "hanlin.mcpserver",
    "hanlin.web",
    "hanlin.agents.mcp.server",
    "hanlin.agents.mcp.http",
    "hanlin.agents.mcp.hanlin_tools",
)

# The library's floors, lowest first. A package imports its own floor (without a cycle) or the
# floors below; a new package takes its place here. `hanlin` itself is the public API's lazy
# re-exports (`from hanlin import KnowledgeBase, ask`), and `hanlin.testing` holds test helpers
# that ship with the package: both may use the whole library.
LAYERS = (
    "hanlin.errors hanlin.paths hanlin.text hanlin.fileio hanlin.frames hanlin.registry "
    "hanlin.sqlite_migrations "
    "hanlin.config",
    "hanlin.access hanlin.net hanlin.db hanlin.guard",
    "hanlin.conversations hanlin.tracing hanlin.prompts",
    "hanlin.models",
    "hanlin.knowledge",
    "hanlin.rag",
    "hanlin.agents",
    "hanlin.evals hanlin.flows",
    "hanlin.tune hanlin.compute",
    "hanlin.testing",
    "hanlin",
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield from _import_nodes_of(other)
            continue
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child
        yield from _import_nodes(child)


def _import_nodes_of(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node
    yield from _import_nodes(node)


def _resolve(
    module: str, is_package: bool, node: ast.Import | ast.ImportFrom, known: set[str]
) -> set[str]:
    """The hanlin modules an import statement loads (the deepest known module of each name)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        # `from pkg import submodule` loads the submodule; `from mod import name` loads mod.
        names = [f"{prefix}.{alias.name}" for alias in node.names] + [prefix]
    found: set[str] = set()
    for name in names:
        if name != ROOT and not name.startswith(ROOT + "."):
            continue
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name:
            found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module → the hanlin modules it imports (a package's own `__init__` chain left out)."""
    modules = _modules()
    known = set(modules)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        targets: set[str] = set()
        for node in _import_nodes(tree):
            targets |= _resolve(name, is_package, node, known)
        targets.discard(name)
        # Importing `hanlin` (the root __init__) is the public re-export, not a dependency edge.
        targets.discard(ROOT)
        graph[name] = targets
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def _describe(component: list[str], graph: dict[str, set[str]]) -> str:
    members = set(component)
    edges = [f"    {a} -> {b}" for a in component for b in sorted(graph[a] & members)]
    return "\n".join([" <-> ".join(component), *edges])


def _is_surface(module: str) -> bool:
    return any(module == s or module.startswith(s + ".") for s in SURFACES)


def _package(module: str) -> str:
    """`hanlin.rag.engine` → `hanlin.rag`; a top-level module is its own package."""
    return ".".join(module.split(".")[:2])


def test_the_walk_sees_function_level_and_relative_imports() -> None:
    graph = import_graph()
    # Guard against a walk that silently finds nothing: the CLI imports the library lazily.
    assert len(graph) > 150
    assert any(t.startswith("hanlin.knowledge") for t in graph["hanlin.cli.kb"])
    assert "hanlin.errors" in graph["hanlin.models.errors"]


def test_no_module_import_cycle() -> None:
    graph = import_graph()
    cycles = _cycles(graph)
    assert not cycles, "import cycles between modules:\n" + "\n".join(
        _describe(c, graph) for c in cycles
    )


def test_no_library_module_imports_a_surface() -> None:
    graph = import_graph()
    bad = sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        if not _is_surface(module)
        for target in targets
        if _is_surface(target)
    )
    assert not bad, "library modules importing a surface:\n" + "\n".join(bad)


def test_library_packages_form_layers() -> None:
    graph = import_graph()
    packages: dict[str, set[str]] = {}
    for module, targets in graph.items():
        if _is_surface(module):
            continue
        edges = packages.setdefault(_package(module), set())
        edges |= {_package(t) for t in targets if not _is_surface(t)} - {_package(module)}
    cycles = _cycles(packages)
    assert not cycles, "import cycles between library packages:\n" + "\n".join(
        _describe(c, packages) for c in cycles
    )


def test_library_packages_import_only_their_floor_or_below() -> None:
    graph = import_graph()
    floor = {package: i for i, packages in enumerate(LAYERS) for package in packages.split()}
    library = {_package(m) for m in graph if not _is_surface(m)}
    unplaced = sorted(library - set(floor))
    assert not unplaced, (
        f"packages without a floor in LAYERS (tests/test_import_graph.py): {unplaced}"
    )
    upward = sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        if not _is_surface(module)
        for target in targets
        if not _is_surface(target) and floor[_package(target)] > floor[_package(module)]
    )
    assert not upward, "imports of a higher floor:\n" + "\n".join(upward)


def test_the_cycle_finder_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"d", "a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
