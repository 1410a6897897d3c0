"""The shape of the codebase, checked from the source (issue 11).

Three rules, read with :mod:`ast` (nothing is imported):

* no import cycle between modules — module-level imports and imports inside functions both count;
  imports under ``if TYPE_CHECKING:`` do not (they never run);
* ``sqlalchemy`` (and the database drivers ``psycopg``, ``sqlite3``) is imported only under
  ``permatoken.store`` (migrations included);
* no module is longer than ``MAX_LINES`` lines (migrations aside).

Today's violations are listed in the RATCHET lists below, each one a known debt. The test fails when a
new violation appears *and* when a listed one is fixed but still listed, so the lists only shrink.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "permatoken"
MAX_LINES = 450

# --- RATCHET: known debt. Remove an entry when it is fixed; never add one. --------------------------

# Import cycles, one entry per strongly connected component of the import graph (sorted members).
# A component changes whenever a module joins or leaves it: update the entry to what is left.
KNOWN_CYCLES: list[tuple[str, ...]] = []

# Modules outside store/ that import sqlalchemy (their SQL belongs in a store module).
KNOWN_SQLALCHEMY_OUTSIDE_STORE: set[str] = set()

# Modules longer than MAX_LINES (to be split, one idea per module).
KNOWN_LONG_MODULES: set[str] = set()

# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    is_package: bool

    @property
    def tree(self) -> ast.Module:
        return ast.parse(self.path.read_text(encoding="utf-8"), filename=str(self.path))


def _modules() -> dict[str, Module]:
    found: dict[str, Module] = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        name = ".".join(parts)
        found[name] = Module(name, path, is_package)
    return found


MODULES = _modules()


def _is_migration(name: str) -> bool:
    return name.startswith(f"{PACKAGE}.store.migrations")


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _import_nodes(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import that can run: anywhere in the tree except under ``if TYPE_CHECKING:``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield from _import_nodes_of(other)
            continue
        yield from _import_nodes_of(child)


def _import_nodes_of(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node
    yield from _import_nodes(node)


def _base_of(module: Module, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    package = module.name if module.is_package else module.name.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def imported_names(module: Module) -> set[str]:
    """Fully qualified names of what ``module`` imports (modules where they are modules)."""
    names: set[str] = set()
    for node in _import_nodes(module.tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
            continue
        base = _base_of(module, node)
        for alias in node.names:
            candidate = f"{base}.{alias.name}"
            names.add(candidate if candidate in MODULES else base)
    return names


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, module in MODULES.items():
        graph[name] = {
            target for target in imported_names(module) if target in MODULES and target != name
        }
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[tuple[str, ...]]:
    """Tarjan's algorithm (iterative); components of more than one module, sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[tuple[str, ...]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                members: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    members.append(member)
                    if member == node:
                        break
                if len(members) > 1:
                    components.append(tuple(sorted(members)))
    return sorted(components)


def _ratchet(name: str, found: set[Any], known: Iterable[Any]) -> None:
    known_set = set(known)
    new = sorted(found - known_set)
    fixed = sorted(known_set - found)
    message = []
    if new:
        message.append(f"new {name} (fix them; the ratchet lists only shrink): {new}")
    if fixed:
        message.append(f"fixed {name} still listed in the ratchet (remove them): {fixed}")
    assert not message, "\n".join(message)


def test_no_import_cycles() -> None:
    """No two modules import each other, directly or through others (TYPE_CHECKING aside)."""
    _ratchet("import cycles", set(strongly_connected(import_graph())), KNOWN_CYCLES)


#: What talks to a database: SQLAlchemy and the drivers under it (a raw psycopg connection for
#: LISTEN is database access too).
DATABASE_PACKAGES = ("sqlalchemy", "psycopg", "sqlite3")


def test_sqlalchemy_only_under_store() -> None:
    """SQL lives in store/: no other module imports sqlalchemy, psycopg or sqlite3."""
    found = {
        name
        for name, module in MODULES.items()
        if not name.startswith(f"{PACKAGE}.store")
        and any(target.split(".")[0] in DATABASE_PACKAGES for target in imported_names(module))
    }
    _ratchet("sqlalchemy imports outside store/", found, KNOWN_SQLALCHEMY_OUTSIDE_STORE)


def test_no_module_too_long() -> None:
    """Every module (migrations aside) stays within MAX_LINES lines."""
    found = {
        name
        for name, module in MODULES.items()
        if not _is_migration(name)
        and len(module.path.read_text(encoding="utf-8").splitlines()) > MAX_LINES
    }
    _ratchet(f"modules over {MAX_LINES} lines", found, KNOWN_LONG_MODULES)


# --- the checker checks itself: each rule catches a violation made on purpose -----------------------


def _fake(name: str, source: str, tmp_path: Path, *, package: bool = False) -> Module:
    path = tmp_path / f"{name}.py"
    path.write_text(source, encoding="utf-8")
    return Module(name, path, package)


def test_cycle_finder_finds_a_cycle_through_a_third_module() -> None:
    """a → b → c → a is one component; a lone edge d → a is not part of it."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected(graph) == [("a", "b", "c")]
    assert strongly_connected({"a": {"b"}, "b": set()}) == []


def test_function_level_imports_count_and_type_checking_ones_do_not(tmp_path: Path) -> None:
    """A lazy import inside a function is an edge; one under `if TYPE_CHECKING:` is not."""
    module = _fake(
        "permatoken.store.fake",
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from ..service import build_engine\n"
        "else:\n"
        "    import json\n"
        "def f():\n"
        "    from ..settings import Settings\n"
        "    from . import engine\n"
        "    import sqlalchemy.orm\n",
        tmp_path,
    )
    names = imported_names(module)
    assert f"{PACKAGE}.settings" in names
    assert f"{PACKAGE}.store.engine" in names  # a submodule named by `from . import`
    assert "sqlalchemy.orm" in names and "json" in names
    assert f"{PACKAGE}.service" not in names
