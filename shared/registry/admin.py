"""Edits to the registry document, applied with optimistic concurrency."""

from __future__ import annotations

import asyncio
import copy
import json
import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from shared.auth import keys
from shared.errors import ConfigError
from shared.limits.config import LimitsError, parse_limits
from shared.protection.netacl import AllowList
from shared.protection.pii import Redactor
from shared.registry.audit import AuditLog, actor, changes
from shared.registry.store import ConcurrentEdit, RegistryStore
from shared.registry.systems import SYSTEM_ID_PATTERN, RegistryError, systems_of
from shared.usage.content import parse_content_logging

T = TypeVar("T")
Document = dict[str, Any]
MAX_ATTEMPTS = 10


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def read_document(store: RegistryStore) -> tuple[Document, str | None]:
    stored = await store.read(None)
    assert stored is not None
    if stored.data is None:
        return {"version": 1, "systems": {}}, None
    document = json.loads(stored.data)
    systems_of(document)
    return document, stored.etag


async def edit(
    store: RegistryStore,
    change: Callable[[Document], T],
    audit: AuditLog | None = None,
    action: str = "",
) -> T:
    """Apply `change` to the latest document and write it back, retrying on races; then
    append what changed to the audit log."""
    for attempt in range(MAX_ATTEMPTS):
        if attempt:
            await asyncio.sleep(random.uniform(0, 0.02 * attempt))
        document, etag = await read_document(store)
        before = copy.deepcopy(document)
        result = change(document)
        data = json.dumps(document, indent=2, sort_keys=True).encode()
        try:
            await store.write(data, etag)
        except ConcurrentEdit:
            continue
        if audit is not None:
            await audit.append(changes(before, document, action, actor()))
        return result
    raise RegistryError("the registry kept changing underneath this edit; try again")


def system_of(document: Document, system_id: str) -> dict[str, Any]:
    system = systems_of(document).get(system_id)
    if system is None:
        raise RegistryError(f"no system '{system_id}'")
    assert isinstance(system, dict)
    return system


def create_system(system_id: str, name: str, models: list[str]) -> Callable[[Document], None]:
    if not SYSTEM_ID_PATTERN.match(system_id):
        raise RegistryError("a system id is 1-64 letters, digits, '.', '_' or '-'")

    def change(document: Document) -> None:
        systems = document.setdefault("systems", {})
        if system_id in systems:
            raise RegistryError(f"system '{system_id}' already exists")
        systems[system_id] = {
            "name": name,
            "models": sorted(set(models)),
            "disabled": False,
            "created": now(),
            "keys": {},
        }

    return change


def update_system(
    system_id: str,
    *,
    name: str | None = None,
    models: list[str] | None = None,
    add_models: Sequence[str] = (),
    remove_models: Sequence[str] = (),
    disabled: bool | None = None,
    allowed_networks: list[str] | None = None,
    entra_app_ids: list[str] | None = None,
    entra_roles: list[str] | None = None,
    redaction: dict[str, Any] | None = None,
    content_logging: dict[str, Any] | None = None,
) -> Callable[[Document], dict[str, Any]]:
    if allowed_networks:
        try:
            AllowList(allowed_networks, "allowed networks")
        except ConfigError as exc:
            raise RegistryError(str(exc)) from None

    if redaction:
        try:
            Redactor(redaction)
        except ConfigError as exc:
            raise RegistryError(str(exc)) from None

    if content_logging:
        try:
            parse_content_logging(content_logging, "content logging")
        except ConfigError as exc:
            raise RegistryError(str(exc)) from None

    def change(document: Document) -> dict[str, Any]:
        system = system_of(document, system_id)
        if content_logging is not None:
            system["content_logging"] = content_logging or None
        if name is not None:
            system["name"] = name
        if redaction is not None:
            system["redaction"] = redaction or None
        if allowed_networks is not None:
            system["allowed_networks"] = allowed_networks
        if entra_app_ids is not None or entra_roles is not None:
            entra = system.setdefault("entra", {})
            if entra_app_ids is not None:
                entra["app_ids"] = entra_app_ids
            if entra_roles is not None:
                entra["roles"] = entra_roles
        current = set(system.get("models", [])) if models is None else set(models)
        system["models"] = sorted((current | set(add_models)) - set(remove_models))
        if disabled is not None:
            system["disabled"] = disabled
        return system

    return change


def delete_system(system_id: str) -> Callable[[Document], None]:
    def change(document: Document) -> None:
        system_of(document, system_id)
        del document["systems"][system_id]

    return change


def take_system(system_id: str) -> Callable[[Document], dict[str, Any] | None]:
    """Remove a system if present; what it was (None: already gone)."""

    def change(document: Document) -> dict[str, Any] | None:
        taken = systems_of(document).pop(system_id, None)
        return copy.deepcopy(taken) if isinstance(taken, dict) else None

    return change


def add_key(system_id: str, label: str) -> tuple[keys.NewKey, Callable[[Document], None]]:
    new = keys.generate_key()

    def change(document: Document) -> None:
        system = system_of(document, system_id)
        system.setdefault("keys", {})[new.key_id] = {
            "hash": new.hash,
            "label": label,
            "created": now(),
            "revoked": None,
        }

    return new, change


def revoke_key(key_id: str) -> Callable[[Document], str]:
    def change(document: Document) -> str:
        for system_id, system in systems_of(document).items():
            record = (system.get("keys") or {}).get(key_id)
            if record is not None:
                record["revoked"] = record.get("revoked") or now()
                return str(system_id)
        raise RegistryError(f"no key '{key_id}'")

    return change


def set_limits(
    system_id: str,
    changes: dict[str, int | None],
    *,
    model: str | None = None,
    key_id: str | None = None,
    clear: bool = False,
) -> Callable[[Document], dict[str, int]]:
    """Set (a number) or remove (None) limits of a system, of one of its models, or of a key."""
    if model and key_id:
        raise RegistryError("limits are per system, per system and model, or per key")
    try:
        parse_limits({k: v for k, v in changes.items() if v is not None}, "limits")
    except LimitsError as exc:
        raise RegistryError(str(exc)) from None

    def change(document: Document) -> dict[str, int]:
        system = system_of(document, system_id)
        if key_id is not None:
            owner = (system.get("keys") or {}).get(key_id)
            if owner is None:
                raise RegistryError(f"system '{system_id}' has no key '{key_id}'")
            owner["limits"] = limits = _changed(owner.get("limits"), changes, clear)
        elif model is not None:
            per_model = system.setdefault("model_limits", {})
            limits = _changed(per_model.get(model), changes, clear)
            if limits:
                per_model[model] = limits
            else:
                per_model.pop(model, None)
        else:
            system["limits"] = limits = _changed(system.get("limits"), changes, clear)
        return limits

    return change


def _changed(current: Any, changes: dict[str, int | None], clear: bool) -> dict[str, int]:
    limits: dict[str, int] = {} if clear else dict(current or {})
    for name, value in changes.items():
        if value is None:
            limits.pop(name, None)
        else:
            limits[name] = value
    return limits
