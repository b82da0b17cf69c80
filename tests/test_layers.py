"""The import order of shared/'s packages, read from the source with `ast`.

A unit (a package or a top-level module of shared/) may import only from units in lower layers;
units in one layer do not import each other. Lazy imports inside functions and imports under
TYPE_CHECKING count too: a layer is about what a unit knows, not when it loads it.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from tests.support.layers import RANK, README, ROOT, SHARED, readme_with_package_list

# What function_app.py may reach: it binds routes and the timer, nothing more.
FUNCTION_APP_UNITS = {"http", "probe", "routes", "settings"}


def modules() -> list[Path]:
    return sorted(p for p in SHARED.rglob("*.py") if "__pycache__" not in p.parts)


def dotted(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "shared" and len(parts) > 1 else None


def imported(path: Path) -> Iterator[tuple[int, str]]:
    """(line, dotted name) for every import in a module of shared/, relative ones resolved."""
    name = dotted(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    return imports_in(path.read_text(), package)


def imports_in(source: str, package: str) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = parts[: len(parts) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield node.lineno, base
            for alias in node.names:  # `from shared import x` imports the module shared.x
                yield node.lineno, f"{base}.{alias.name}"


def test_every_unit_has_a_layer() -> None:
    units = {p.stem for p in SHARED.glob("*.py") if p.name != "__init__.py"}
    units |= {p.name for p in SHARED.iterdir() if (p / "__init__.py").is_file()}
    assert units == set(RANK), "place each package and top-level module of shared/ in LAYERS"


def upward(own: str, imports: Iterable[tuple[int, str]]) -> list[str]:
    """The imports of unit `own` that reach a unit in its own layer or above."""
    wrong = []
    for line, name in imports:
        target = unit_of(name)
        if target is None or target == own or target not in RANK:
            continue
        if RANK[target] >= RANK[own]:
            wrong.append(f"line {line}: {own} (layer {RANK[own]}) imports {name}")
    return wrong


@pytest.mark.parametrize(
    "path", modules()[1:], ids=lambda p: str(p.relative_to(SHARED))
)  # all but shared/__init__.py
def test_imports_follow_the_layers(path: Path) -> None:
    own = unit_of(dotted(path))
    assert own in RANK
    wrong = upward(own, imported(path))
    assert not wrong, wrong


def test_layer_check_reads_every_kind_of_import() -> None:
    """The check itself: lazy, TYPE_CHECKING and relative imports are all seen."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from shared.registry.systems import Caller\n"
        "def f():\n    from shared.http import handlers\n"
        "from . import plan\nfrom .store import Admission\nfrom shared.errors import ConfigError\n"
    )
    found = list(imports_in(source, "shared.limits"))
    names = {name for _, name in found}
    assert {"shared.limits.plan", "shared.limits.store", "shared.errors"} <= names
    wrong = upward("limits", found)
    assert sorted(w.split(" imports ")[1] for w in wrong) == [
        "shared.http",
        "shared.http.handlers",
        "shared.registry.systems",
        "shared.registry.systems.Caller",
    ]


def test_no_import_cycles_between_modules() -> None:
    graph: dict[str, set[str]] = {}
    names = {dotted(p) for p in modules()}
    for path in modules():
        targets = {name for _, name in imported(path) if name in names}
        graph[dotted(path)] = targets - {dotted(path)}
    cycles = _cycles(graph)
    assert not cycles, cycles


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                found.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


@pytest.mark.parametrize(
    "init", sorted(SHARED.rglob("__init__.py")), ids=lambda p: str(p.relative_to(SHARED))
)
def test_packages_hold_only_their_docstring(init: Path) -> None:
    body = ast.parse(init.read_text()).body
    assert len(body) == 1, f"{init}: a package re-exports nothing; move code into a module"
    docstring = ast.get_docstring(ast.parse(init.read_text()))
    assert docstring and len(docstring.split()) >= 8, f"{init}: say what the package owns"


def test_only_the_host_knows_the_functions_runtime() -> None:
    wrong = []
    for path in modules():
        if unit_of(dotted(path)) == "host":
            continue
        for line, name in imported(path):
            if name.startswith(("azure.functions", "azurefunctions", "function_app")):
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert not wrong, wrong


def test_function_app_only_binds() -> None:
    reached = {unit_of(name) for _, name in imported(ROOT / "function_app.py")} - {None}
    assert reached <= FUNCTION_APP_UNITS, reached - FUNCTION_APP_UNITS


@pytest.mark.parametrize("unit", sorted(u for u in RANK if (SHARED / u).is_dir()), ids=str)
def test_each_package_names_its_modules(unit: str) -> None:
    """A package's docstring says what each of its modules owns, so none goes unexplained."""
    folder = SHARED / unit
    docstring = ast.get_docstring(ast.parse((folder / "__init__.py").read_text())) or ""
    words = set(re.findall(r"\w+", docstring))
    modules = {p.stem for p in folder.glob("*.py")} - {"__init__"}
    missing = sorted(m for m in modules if m not in words)
    assert not missing, f"shared/{unit}/__init__.py does not mention {missing}"


def test_readme_package_list_is_made_from_the_docstrings() -> None:
    text = README.read_text()
    assert readme_with_package_list(text) == text, "run: python -m tests.support.layers"
