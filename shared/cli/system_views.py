"""Systems as `systems list` and `systems show` print them: tables and text for people, JSON with
the same keys every time for scripts. Never a key or its hash."""

from __future__ import annotations

from typing import Any

from shared.cli.limits_view import limits_json, limits_table
from shared.cli.output import EMPTY, limits_text, names, table
from shared.registry.systems import ALL_MODELS

Spec = dict[str, Any]


def state(spec: Spec) -> str:
    return "disabled" if spec.get("disabled") else "enabled"


def models_text(models: list[str]) -> str:
    if ALL_MODELS in models:
        return "all ('*')"
    return names(models, "none")


def active_keys(spec: Spec) -> int:
    return sum(1 for record in (spec.get("keys") or {}).values() if not record.get("revoked"))


def list_table(systems: dict[str, Spec]) -> str:
    rows = [
        (
            system_id,
            state(spec),
            models_text(spec.get("models", [])),
            active_keys(spec),
            spec.get("name") or None,
        )
        for system_id, spec in sorted(systems.items())
    ]
    return table(("ID", "STATE", "MODELS", "ACTIVE KEYS", "NAME"), rows)


def list_json(systems: dict[str, Spec]) -> list[dict[str, Any]]:
    return [
        {
            "id": system_id,
            "name": spec.get("name", ""),
            "disabled": bool(spec.get("disabled")),
            "models": list(spec.get("models", [])),
            "created": spec.get("created"),
            "active_keys": active_keys(spec),
        }
        for system_id, spec in sorted(systems.items())
    ]


def key_json(key_id: str, system_id: str, record: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": key_id,
        "system": system_id,
        "label": record.get("label", ""),
        "created": record.get("created"),
        "revoked": record.get("revoked"),
        "limits": dict(record.get("limits") or {}),
    }


def keys_table(keys: list[dict[str, Any]], with_system: bool = True) -> str:
    rows = [
        (
            *((key["id"], key["system"]) if with_system else (key["id"],)),
            f"revoked {key['revoked']}" if key["revoked"] else "active",
            key["created"],
            key["label"] or None,
            limits_text(key["limits"]) if key["limits"] else None,
        )
        for key in keys
    ]
    headers = ("KEY ID", "SYSTEM") if with_system else ("KEY ID",)
    return table((*headers, "STATE", "CREATED", "LABEL", "LIMITS"), rows)


def show_json(system_id: str, spec: Spec) -> dict[str, Any]:
    entra = spec.get("entra") or {}
    return {
        "id": system_id,
        "name": spec.get("name", ""),
        "disabled": bool(spec.get("disabled")),
        "created": spec.get("created"),
        "models": list(spec.get("models", [])),
        "allowed_networks": list(spec.get("allowed_networks") or []),
        "entra": {"app_ids": list(entra.get("app_ids", [])), "roles": list(entra.get("roles", []))},
        "redaction": spec.get("redaction"),
        "content_logging": spec.get("content_logging"),
        "cache": spec.get("cache"),
        "content_policy": spec.get("content_policy"),
        "limits": limits_json(system_id, spec),
        "keys": [key_json(k, system_id, r) for k, r in sorted((spec.get("keys") or {}).items())],
    }


def show_text(system_id: str, spec: Spec) -> str:
    view = show_json(system_id, spec)
    redaction = view["redaction"] or {}
    content = view["content_logging"]
    fields = [
        ("id", system_id),
        ("name", view["name"] or EMPTY),
        ("state", state(spec)),
        ("created", view["created"] or EMPTY),
        ("models", models_text(view["models"])),
        ("allowed networks", names(view["allowed_networks"], "any")),
        ("entra app ids", names(view["entra"]["app_ids"], EMPTY)),
        ("entra roles", names(view["entra"]["roles"], EMPTY)),
        ("pii redaction", _redaction_text(redaction)),
        ("content logging", f"on, kept {content.get('retention_days')} days" if content else "off"),
        ("response cache", _cache_text(view["cache"])),
        ("content policy", _policy_text(view["content_policy"])),
    ]
    width = max(len(label) for label, _ in fields)
    lines = [f"{label + ':':<{width + 1}}  {value}" for label, value in fields]
    lines += ["", "limits:", limits_table(system_id, spec) or "  none"]
    keys = view["keys"]
    lines += ["", "keys:", keys_table(keys, with_system=False) if keys else "  none"]
    return "\n".join(lines)


def _policy_text(policy: dict[str, Any] | None) -> str:
    if not policy:
        return "off"
    parts = [
        f"{where} {', '.join(f'{c}>={n}' for c, n in policy[where].items())}"
        for where in ("prompt", "answer")
        if policy.get(where)
    ]
    if policy.get("prompt_shields"):
        parts.append("prompt shields")
    if policy.get("blocklists"):
        parts.append(f"blocklists {names(policy['blocklists'])}")
    if policy.get("patterns"):
        parts.append(f"{len(policy['patterns'])} patterns")
    return f"{'; '.join(parts) or 'on'} (outage: {policy.get('outage', 'open')})"


def _cache_text(cache: dict[str, Any] | None) -> str:
    if not cache:
        return "off"
    models = cache.get("models")
    scope = f"shared scope '{cache['scope']}'" if cache.get("scope") else "its own"
    which = names(models) if models else "every model"
    return f"on, {which}, kept {cache.get('ttl_seconds')} s, {scope}"


def _redaction_text(redaction: dict[str, Any]) -> str:
    if not redaction:
        return "off"
    kinds = redaction.get("kinds")
    return f"{redaction.get('mode')} ({names(kinds) if kinds else 'every kind'})"
