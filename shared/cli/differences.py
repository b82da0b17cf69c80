"""What an edit changed in a system, field by field, as one line (audit log, `systems update`)."""

from __future__ import annotations

import json
from typing import Any

MAX_VALUE = 120


def difference(before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    """`field: old -> new; ...` (`keys.<id>.revoked: ...` inside objects); "created" or
    "deleted" when there is no before or after."""
    if before is None and after is None:
        return "not in the registry"
    if before is None:
        return "created"
    if after is None:
        return "deleted"
    return "; ".join(_changes(before, after, "")) or "no change"


def _changes(before: Any, after: Any, path: str) -> list[str]:
    if not (isinstance(before, dict) and isinstance(after, dict)):
        return [f"{path}: {short(before)} -> {short(after)}"]
    found = []
    for field in sorted(set(before) | set(after)):
        if before.get(field) != after.get(field):
            found += _changes(before.get(field), after.get(field), f"{path}.{field}".lstrip("."))
    return found


def short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 3] + "..."
