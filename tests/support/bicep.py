"""Reading the Bicep in infra/ offline: a syntax check and a model to assert on.

There is no Bicep CLI on these machines, so two PyPI packages stand in for it:
tree-sitter-bicep finds syntax errors (with line and column), and pycep-parser turns each file
into a JSON-like model (parameters, variables, resources, modules, outputs) that the structural
tests in tests/test_infra.py query. Neither checks resource types or property names against
Azure's schemas; that needs `bicep build` or a deployment.

In pycep's model an identifier and a string literal both come out as a plain `str` ('logLevel'
the parameter, 'INFO' the string); the tests compare against names they know.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tree_sitter_bicep
from pycep import BicepParser
from tree_sitter import Language, Node, Parser

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
MAIN = INFRA / "main.bicep"


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


def syntax_errors(path: Path) -> list[str]:
    """Every ERROR or missing node tree-sitter-bicep finds, as 'file:line:column: ...'."""
    source = path.read_bytes()
    tree = _parser().parse(source)
    found: list[str] = []

    def walk(node: Node) -> None:
        if node.type == "ERROR" or node.is_missing:
            line, column = node.start_point
            kind = f"missing {node.type}" if node.is_missing else "syntax error"
            text = source[node.start_byte : node.end_byte][:40].decode(errors="replace")
            name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
            found.append(f"{name}:{line + 1}:{column + 1}: {kind} near {text!r}")
        for child in node.children:
            walk(child)

    walk(tree.root_node)
    return found


@functools.cache
def _parser() -> Parser:
    return Parser(Language(tree_sitter_bicep.language()))


@functools.cache
def model(path: Path) -> dict[str, Any]:
    """pycep-parser's model of one file (cached: the tests read each file many times)."""
    parsed: dict[str, Any] = dict(BicepParser().parse(file_path=path))
    return parsed


def body(config: dict[str, Any]) -> dict[str, Any]:
    """A resource's or module's own properties, without `for` / `if` wrappers."""
    while "config" in config and ("loop_type" in config or "condition" in config):
        config = config["config"]
    return config


def condition(config: dict[str, Any]) -> Any:
    """The `if (...)` of a resource or module, or None."""
    return config.get("condition") if "config" in config else None


def key(name: str) -> str:
    """An object key as written: 'aad-enabled' comes back from pycep with its quotes."""
    return name[1:-1] if len(name) > 1 and name[0] == name[-1] == "'" else name


@dataclass(frozen=True)
class Resource:
    file: Path
    symbol: str
    type: str
    existing: bool
    config: dict[str, Any]  # as pycep gives it, with any loop / condition wrapper

    @property
    def body(self) -> dict[str, Any]:
        return body(self.config)

    @property
    def properties(self) -> dict[str, Any]:
        props: dict[str, Any] = self.body.get("properties", {})
        return props


def resources(path: Path | None = None, type_: str | None = None) -> Iterator[Resource]:
    for file in [path] if path else bicep_files():
        for symbol, spec in model(file).get("resources", {}).items():
            if type_ is None or spec["type"] == type_:
                yield Resource(file, symbol, spec["type"], spec["existing"], spec["config"])


def resource(path: Path, symbol: str) -> Resource:
    spec = model(path)["resources"][symbol]
    return Resource(path, symbol, spec["type"], spec["existing"], spec["config"])


def the(path: Path, type_: str) -> Resource:
    """The one resource of `type_` declared (not `existing`) in `path`."""
    found = [r for r in resources(path, type_) if not r.existing]
    assert len(found) == 1, f"{path.name}: {len(found)} resources of type {type_}"
    return found[0]


def module_calls(path: Path = MAIN) -> dict[str, dict[str, Any]]:
    """symbol -> {'path': 'modules/x.bicep', 'condition': ..., 'params': {...}}."""
    calls = {}
    for symbol, spec in model(path).get("modules", {}).items():
        config = spec["config"]
        calls[symbol] = {
            "path": spec["detail"]["path"],
            "type": spec["type"],
            "condition": condition(config),
            "params": body(config).get("params", {}),
        }
    return calls


def calls_of(module_file: Path) -> list[dict[str, Any]]:
    """Every call of `module_file` from main.bicep."""
    return [c for c in module_calls().values() if INFRA / c["path"] == module_file]


def parameter(path: Path, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = model(path)["parameters"][name]
    return spec


def decorators(path: Path, name: str) -> dict[str, Any]:
    return {d["type"]: d.get("argument") for d in parameter(path, name)["decorators"]}


def variable(path: Path, name: str) -> Any:
    return model(path)["variables"][name]["value"]


def function(expr: Any, name: str) -> dict[str, Any] | None:
    """expr's arguments if expr is a call of `name` (pycep's spelling, e.g. 'union')."""
    if isinstance(expr, dict) and expr.get("function", {}).get("type") == name:
        args: dict[str, Any] = expr["function"]["parameters"]
        return args
    return None


def operator(expr: Any, name: str) -> dict[str, Any] | None:
    if isinstance(expr, dict) and expr.get("operator", {}).get("type") == name:
        operands: dict[str, Any] = expr["operator"]["operands"]
        return operands
    return None


def accessed(expr: Any) -> str:
    """`a.b.c` as text (pycep nests property accessors to the right)."""
    operands = operator(expr, "property_accessor")
    if operands is None:
        assert isinstance(expr, str), expr
        return expr
    return f"{accessed(operands['operand_1'])}.{accessed(operands['operand_2'])}"


@dataclass(frozen=True)
class Setting:
    value: Any  # pycep expression
    file: Path  # the file whose names `value` refers to


def object_entries(expr: Any, file: Path) -> dict[str, Setting]:
    """The keys an object expression can have, with their values.

    Follows variables, union(), both branches of `c ? a : b`, and parameters of a module up
    to what main.bicep passes for them.
    """
    if isinstance(expr, dict) and "function" not in expr and "operator" not in expr:
        return {key(k): Setting(v, file) for k, v in expr.items()}
    if (args := function(expr, "union")) is not None:
        merged: dict[str, Setting] = {}
        for arg in args.values():
            merged.update(object_entries(arg, file))
        return merged
    if (branches := operator(expr, "conditional")) is not None:
        return {
            **object_entries(branches["false_value"], file),
            **object_entries(branches["true_value"], file),
        }
    if isinstance(expr, str):
        file_model = model(file)
        if expr in file_model.get("variables", {}):
            return object_entries(variable(file, expr), file)
        if expr in file_model.get("parameters", {}):
            if file != MAIN:
                (call,) = calls_of(file)
                return object_entries(call["params"][expr], MAIN)
            if parameter(MAIN, expr)["default"] == {}:
                return {}  # an operator's overrides: none by default
    raise AssertionError(f"{file.name}: cannot follow {expr!r} to an object")


def array_items(expr: Any, file: Path) -> list[Setting]:
    """The items of an array expression, following variables and module parameters."""
    if isinstance(expr, list):
        return [Setting(item, file) for item in expr]
    if isinstance(expr, str):
        file_model = model(file)
        if expr in file_model.get("variables", {}):
            return array_items(variable(file, expr), file)
        if expr in file_model.get("parameters", {}) and file != MAIN:
            (call,) = calls_of(file)
            return array_items(call["params"][expr], MAIN)
    raise AssertionError(f"{file.name}: cannot follow {expr!r} to an array")


def resolve(setting: Setting) -> Setting:
    """Follow a name to the variable's value or to what main.bicep passes for a parameter."""
    value, file = setting.value, setting.file
    if isinstance(value, str):
        file_model = model(file)
        if value in file_model.get("variables", {}):
            return resolve(Setting(variable(file, value), file))
        if value in file_model.get("parameters", {}) and file != MAIN:
            calls = calls_of(file)
            if len(calls) == 1 and value in calls[0]["params"]:
                return resolve(Setting(calls[0]["params"][value], MAIN))
    return setting
