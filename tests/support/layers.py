"""shared/'s layers and the README's package list, both made from the code itself.

`python -m tests.support.layers` rewrites the list in README.md from the docstrings.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT / "shared"
README = ROOT / "README.md"

# Bottom first: a unit may import only from units in earlier layers (tests/test_layers.py).
LAYERS: list[set[str]] = [
    {"errors"},
    {"settings", "routes", "protection", "host", "simulator"},
    {"limits", "auth"},
    {"storage", "guardrails"},
    {"usage", "cache"},
    {"upstream", "registry"},
    {"probe", "gateway"},
    {"report"},
    {"http"},  # the status page (http/status.py) shows reports
    {"cli"},
]
RANK = {unit: rank for rank, layer in enumerate(LAYERS) for unit in layer}

BEGIN = "<!-- packages: from shared/'s docstrings by `python -m tests.support.layers` -->"
END = "<!-- /packages -->"


def unit_path(unit: str) -> Path:
    package = SHARED / unit / "__init__.py"
    return package if package.is_file() else SHARED / f"{unit}.py"


def summary(path: Path) -> str:
    """The docstring's first paragraph, on one line."""
    docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
    return " ".join(docstring.split("\n\n")[0].split())


def package_list() -> str:
    rows = ["| layer | in `shared/` | what it owns |", "| --- | --- | --- |"]
    for rank, layer in enumerate(LAYERS):
        for unit in sorted(layer):
            path = unit_path(unit)
            name = f"{unit}/" if path.name == "__init__.py" else path.name
            rows.append(f"| {rank} | `{name}` | {summary(path)} |")
    return "\n".join([BEGIN, *rows, END])


def readme_with_package_list(text: str) -> str:
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[:start] + package_list() + text[end:]


if __name__ == "__main__":
    README.write_text(readme_with_package_list(README.read_text()))
    print(f"{README}: package list rewritten")
