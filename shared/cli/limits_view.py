"""Every limit that applies to a system's requests, as a table and as JSON: its own, each
model's and each active key's (a request must pass all that apply to it); and what an edit of
them changed, in one line."""

from __future__ import annotations

from typing import Any, NamedTuple

from shared.cli.output import limits_text, table
from shared.limits.config import LIMIT_FIELDS

Spec = dict[str, Any]
HEADERS = (
    "SCOPE",
    "RPM",
    "TPM",
    "CONCURRENCY",
    "TOKENS/DAY",
    "TOKENS/MONTH",
    "BUDGET/DAY",
    "BUDGET/MONTH",
)


class Scope(NamedTuple):
    kind: str  # "system", "model" or "key"
    name: str | None  # the model, or the key id
    limits: dict[str, int]

    @property
    def label(self) -> str:
        return self.kind if self.name is None else f"{self.kind} {self.name}"


def scopes(spec: Spec | None) -> list[Scope]:
    """The scopes that have limits; revoked keys' limits no longer apply and are left out."""
    spec = spec or {}
    found = [Scope("system", None, dict(spec.get("limits") or {}))]
    found += [
        Scope("model", m, dict(v or {}))
        for m, v in sorted((spec.get("model_limits") or {}).items())
    ]
    found += [
        Scope("key", key_id, dict(record.get("limits") or {}))
        for key_id, record in sorted((spec.get("keys") or {}).items())
        if not record.get("revoked")
    ]
    return [scope for scope in found if scope.limits]


def limits_json(system_id: str, spec: Spec) -> dict[str, Any]:
    found = scopes(spec)
    return {
        "system": system_id,
        "limits": next((s.limits for s in found if s.kind == "system"), {}),
        "models": {s.name: s.limits for s in found if s.kind == "model"},
        "keys": {s.name: s.limits for s in found if s.kind == "key"},
    }


def limits_table(system_id: str, spec: Spec) -> str:
    """The table, or "" when the system has no limits at all."""
    found = scopes(spec)
    if not found:
        return ""
    return table(HEADERS, [(s.label, *(s.limits.get(f) for f in LIMIT_FIELDS)) for s in found])


def describe_edit(system_id: str, before: Spec, after: Spec | None) -> str:
    """`limits of system 'x': system now rpm=60; cleared model gpt-4o (tpm=500); still in force:
    key abc (rpm=6)`."""
    old = {s.label: s.limits for s in scopes(before)}
    new = {s.label: s.limits for s in scopes(after)}
    changed = [f"{label} now {limits_text(v)}" for label, v in new.items() if old.get(label) != v]
    cleared = [f"{label} ({limits_text(v)})" for label, v in old.items() if label not in new]
    kept = [f"{label} ({limits_text(v)})" for label, v in new.items() if old.get(label) == v]
    parts = changed + ([f"cleared {', '.join(cleared)}"] if cleared else [])
    if not parts:
        parts = ["unchanged"]
    parts.append(f"still in force: {', '.join(kept)}" if kept else "no other limits")
    return f"limits of system '{system_id}': " + "; ".join(parts)
