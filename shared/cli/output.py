"""What commands print: tables with a header row, JSON with stable keys, and notes and warnings
on stderr, so that stdout holds only what a script reads."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

EMPTY = "-"


def json_option(parser: argparse.ArgumentParser, what: str = "the same") -> None:
    parser.add_argument(
        "--json", action="store_true", help=f"{what} as JSON, for scripts (stable keys)"
    )


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Columns aligned on the widest cell; None is shown as '-'."""
    cells = [list(headers)] + [[EMPTY if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    )


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))


def note(text: str) -> None:
    print(text, file=sys.stderr)


def warn(text: str) -> None:
    print(f"tollgate: warning: {text}", file=sys.stderr)


def limits_text(limits: Mapping[str, Any] | None) -> str:
    """`rpm=60 tpm=200000`, or `none`."""
    return " ".join(f"{name}={value}" for name, value in (limits or {}).items()) or "none"


def names(values: Iterable[str], empty: str = "none") -> str:
    return ", ".join(values) or empty
