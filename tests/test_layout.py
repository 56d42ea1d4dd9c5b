"""The package's layers: what may import what (the README's layout table), and no cycles.

Imports are read from the source with ``ast``, function-level imports included (they are
imports all the same), ``if TYPE_CHECKING:`` blocks excluded (they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "versioncube"

#: Top to bottom: a module may import from its own layer and from the layers below it.
#: Same order as the README's layout table.
LAYERS: list[tuple[str, set[str]]] = [
    ("interfaces", {"__init__", "__main__", "api", "cli", "cube"}),
    ("write", {"write"}),
    ("layout", {"layout"}),
    ("slices", {"slices"}),
    ("config", {"config"}),
    ("versions", {"versions"}),
    ("store", {"store"}),
    ("display", {"display"}),
    ("errors", {"errors", "_version"}),
]
#: Modules outside the layers: sample data (imports nothing of versioncube) and the test
#: helpers (may import anything; nothing in the package imports them).
STANDALONE = {"samples"}
HELPERS = {"testing"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top(module: str) -> str:
    """``versioncube.write.append`` -> ``write``; ``versioncube`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _layer(module: str) -> int | None:
    top = _top(module)
    for index, (_, members) in enumerate(LAYERS):
        if top in members:
            return index
    return None


def _type_checking_block(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Name | ast.Attribute)
        and ast.unparse(node.test).endswith("TYPE_CHECKING")
    )


def _imports(path: Path) -> set[str]:
    """The versioncube modules ``path`` imports (a ``from package import module`` counts as
    the module)."""
    tree = ast.parse(path.read_text())
    skipped = {
        id(inner)
        for node in ast.walk(tree)
        if _type_checking_block(node)
        for inner in ast.walk(node)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("versioncube")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("versioncube"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in MODULES else node.module or "")
    return found - {""}


MODULES = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
GRAPH = {name: _imports(path) for name, path in MODULES.items()}


def test_the_layers_cover_every_module():
    known = {member for _, members in LAYERS for member in members} | STANDALONE | HELPERS
    unplaced = sorted(name for name in MODULES if _top(name) not in known)
    assert not unplaced, f"modules in no layer (add them to the README table too): {unplaced}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_flow_down_the_layers(module):
    top, layer = _top(module), _layer(module)
    wrong = []
    for imported in sorted(GRAPH[module]):
        if _top(imported) in HELPERS and top not in HELPERS:  # helpers may use each other
            wrong.append(f"{imported} (the test helpers are for tests and benchmarks only)")
        elif top in STANDALONE:
            wrong.append(f"{imported} (samples stand alone)")
        elif top in HELPERS or _layer(imported) == layer:
            continue
        elif layer is not None and (_layer(imported) or 0) < layer:
            wrong.append(f"{imported} (layer {LAYERS[_layer(imported) or 0][0]})")
    assert not wrong, f"{module} (layer {LAYERS[layer or 0][0]}) imports upward: {wrong}"


def test_there_are_no_import_cycles():
    cycles: list[list[str]] = []
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(module: str) -> None:
        state[module] = "open"
        stack.append(module)
        for imported in sorted(GRAPH.get(module, ())):
            if imported not in GRAPH:
                continue
            if state.get(imported) == "open":
                cycles.append([*stack[stack.index(imported) :], imported])
            elif imported not in state:
                visit(imported)
        stack.pop()
        state[module] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles)


def test_the_readme_table_names_every_layer():
    readme = (PACKAGE.parent / "README.md").read_text()
    for name, members in LAYERS:
        for member in members - {"__init__", "__main__", "_version"}:
            folder = f"`{member}/`" if (PACKAGE / member).is_dir() else f"`{member}.py`"
            assert folder in readme, f"README's layout table does not list {folder} ({name})"
