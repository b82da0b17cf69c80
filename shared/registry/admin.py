"""Edits to the registry document, applied with optimistic concurrency and recorded in the audit
log whoever makes them (the `tollgate` commands, `tollgate run`'s demo key, a script)."""

from __future__ import annotations

import asyncio
import copy
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from shared.auth import keys
from shared.errors import ConfigError
from shared.limits.config import LimitsError, parse_limits
from shared.registry.audit import AuditLog, actor, changes
from shared.registry.store import ConcurrentEdit, FileStore, RegistryStore
from shared.registry.systems import SYSTEM_ID_PATTERN, RegistryError, systems_of
from shared.settings import Settings

T = TypeVar("T")
Document = dict[str, Any]
MAX_ATTEMPTS = 10


@dataclass(frozen=True)
class Change(Generic[T]):
    """One edit: what it does to a document, and its name in the audit log."""

    action: str  # "systems create", "keys revoke", ...
    apply: Callable[[Document], T]

    def __call__(self, document: Document) -> T:
        return self.apply(document)


@dataclass(frozen=True)
class Revoked:
    system_id: str
    revoked: str  # when
    already: bool  # it had been revoked before this edit


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def read_document(store: RegistryStore) -> tuple[Document, str | None]:
    """The document and its ETag; an empty document and None when there is none yet."""
    stored = await store.read(None)
    assert stored is not None
    if stored.data is None:
        return {"version": 1, "systems": {}}, None
    document = json.loads(stored.data)
    systems_of(document)
    return document, stored.etag


async def edit(
    store: RegistryStore,
    change: Change[T],
    audit: AuditLog | None = None,
    *,
    recorded_by_caller: bool = False,
) -> T:
    """Apply `change` to the latest document and write it back, retrying on races; then append
    what changed to `audit`, or to the audit log the environment names for this registry.
    `recorded_by_caller`: the caller writes an audit entry of its own (purge)."""
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
        if not recorded_by_caller:
            await _record(store, audit, changes(before, document, change.action, actor()))
        return result
    raise RegistryError("the registry kept changing underneath this edit; try again")


async def _record(
    store: RegistryStore, audit: AuditLog | None, entries: list[dict[str, Any]]
) -> None:
    if audit is not None:
        await audit.append(entries)
        return
    if not entries:
        return
    registry = store.path if isinstance(store, FileStore) else None
    opened = AuditLog.from_settings(Settings.from_env(), registry)
    try:
        await opened.append(entries)
    finally:
        await opened.aclose()


def system_of(document: Document, system_id: str) -> dict[str, Any]:
    system = systems_of(document).get(system_id)
    if system is None:
        raise RegistryError(f"no system '{system_id}'")
    assert isinstance(system, dict)
    return system


def create_system(system_id: str, name: str, models: list[str]) -> Change[None]:
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

    return Change("systems create", change)


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
    cache: bool | None = None,
    cache_settings: dict[str, Any] | None = None,
    content_policy: dict[str, Any] | None = None,
) -> Change[dict[str, Any]]:
    """`cache_settings` (ttl_seconds, scope, models; None removes one) turn the cache on too."""
    _check_policies(allowed_networks, redaction, content_logging)
    if cache is False and cache_settings:
        raise RegistryError("the cache's settings go with turning it on, not off")

    def change(document: Document) -> dict[str, Any]:
        system = system_of(document, system_id)
        if content_logging is not None:
            system["content_logging"] = content_logging or None
        if content_policy is not None:
            system["content_policy"] = _content_policy(document, content_policy) or None
        if cache is False:
            system["cache"] = None
        elif cache or cache_settings:
            system["cache"] = _cache_policy(system.get("cache"), cache_settings or {})
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

    return Change("systems update", change)


def _content_policy(document: Document, policy: dict[str, Any]) -> dict[str, Any]:
    """A policy the gateway accepts, naming only blocklists that exist ({}: none)."""
    from shared.guardrails.policy import parse_content_policy

    try:
        parse_content_policy(policy, "content policy")
    except ConfigError as exc:
        raise RegistryError(str(exc)) from None
    missing = [n for n in policy.get("blocklists") or [] if n not in blocklists(document)]
    if missing:
        raise RegistryError(f"no blocklists {missing}: create them with tollgate blocklists")
    return policy


def blocklists(document: Document) -> dict[str, Any]:
    lists = document.setdefault("blocklists", {})
    assert isinstance(lists, dict)
    return lists


def set_blocklist(
    name: str, add: Sequence[str] = (), remove: Sequence[str] = ()
) -> Change[list[str]]:
    """Create a blocklist, or add and remove terms (case-insensitively); its terms after."""
    from shared.guardrails.policy import BLOCKLIST_NAME

    if not BLOCKLIST_NAME.match(name):
        raise RegistryError("a blocklist name is 1-64 letters, digits, '.', '_', '~' or '-'")
    if any(not term.strip() or len(term) > 128 for term in add):
        raise RegistryError("a term is 1-128 characters")

    def change(document: Document) -> list[str]:
        entry = blocklists(document).setdefault(name, {"terms": []})
        gone = {term.casefold() for term in remove}
        terms = [t for t in entry["terms"] if t.casefold() not in gone]
        known = {t.casefold() for t in terms}
        terms += [t for t in dict.fromkeys(add) if t.casefold() not in known]
        entry["terms"] = terms
        return terms

    return Change("blocklists set", change)


def delete_blocklist(name: str) -> Change[None]:
    def change(document: Document) -> None:
        users = [
            system_id
            for system_id, spec in systems_of(document).items()
            if name in ((spec.get("content_policy") or {}).get("blocklists") or [])
        ]
        if users:
            raise RegistryError(f"blocklist '{name}' is used by {', '.join(sorted(users))}")
        if blocklists(document).pop(name, None) is None:
            raise RegistryError(f"no blocklist '{name}'")

    return Change("blocklists delete", change)


def _cache_policy(current: Any, changes: dict[str, Any]) -> dict[str, Any]:
    from shared.cache.policy import DEFAULT_TTL_SECONDS, parse_cache_policy

    merged = {**(current if isinstance(current, dict) else {}), **changes}
    policy = {name: value for name, value in merged.items() if value is not None}
    policy.setdefault("ttl_seconds", DEFAULT_TTL_SECONDS)
    try:
        parse_cache_policy(policy, "-", "", "cache")
    except ConfigError as exc:
        raise RegistryError(str(exc)) from None
    return policy


def _check_policies(
    allowed_networks: list[str] | None,
    redaction: dict[str, Any] | None,
    content_logging: dict[str, Any] | None,
) -> None:
    """Refuse a policy the gateway would reject, before anything is written."""
    # Imported here: only an update that sets them needs the parsers.
    from shared.protection.netacl import AllowList
    from shared.protection.pii import Redactor
    from shared.usage.content import parse_content_logging

    try:
        if allowed_networks:
            AllowList(allowed_networks, "allowed networks")
        if redaction:
            Redactor(redaction)
        if content_logging:
            parse_content_logging(content_logging, "content logging")
    except ConfigError as exc:
        raise RegistryError(str(exc)) from None


def delete_system(system_id: str) -> Change[dict[str, Any]]:
    """Remove a system and its keys; what it was."""

    def change(document: Document) -> dict[str, Any]:
        system = system_of(document, system_id)
        del document["systems"][system_id]
        return system

    return Change("systems delete", change)


def take_system(system_id: str) -> Change[dict[str, Any] | None]:
    """Remove a system if present; what it was (None: already gone)."""

    def change(document: Document) -> dict[str, Any] | None:
        taken = systems_of(document).pop(system_id, None)
        return copy.deepcopy(taken) if isinstance(taken, dict) else None

    return Change("systems purge", change)


def add_key(system_id: str, label: str) -> tuple[keys.NewKey, Change[None]]:
    new = keys.generate_key()

    def change(document: Document) -> None:
        system = system_of(document, system_id)
        system.setdefault("keys", {})[new.key_id] = {
            "hash": new.hash,
            "label": label,
            "created": now(),
            "revoked": None,
        }

    return new, Change("keys create", change)


def revoke_key(key_id: str) -> Change[Revoked]:
    def change(document: Document) -> Revoked:
        for system_id, system in systems_of(document).items():
            record = (system.get("keys") or {}).get(key_id)
            if record is not None:
                already = bool(record.get("revoked"))
                record["revoked"] = record.get("revoked") or now()
                return Revoked(str(system_id), str(record["revoked"]), already)
        raise RegistryError(f"no key '{key_id}'")

    return Change("keys revoke", change)


def set_limits(
    system_id: str,
    changes: dict[str, int | None],
    *,
    model: str | None = None,
    key_id: str | None = None,
    clear: bool = False,
    clear_models: bool = False,
    clear_keys: bool = False,
) -> Change[dict[str, int]]:
    """Set (a number) or remove (None) limits of a system, of one of its models, or of a key.

    `clear` first removes the limits of that target only (the system's own, the model's or the
    key's); `clear_models` and `clear_keys` remove every model's and every key's limits."""
    if model and key_id:
        raise RegistryError("limits are per system, per system and model, or per key")
    if (model or key_id) and (clear_models or clear_keys):
        raise RegistryError("clearing every model's or key's limits goes without --model/--key")
    try:
        parse_limits({k: v for k, v in changes.items() if v is not None}, "limits")
    except LimitsError as exc:
        raise RegistryError(str(exc)) from None

    def change(document: Document) -> dict[str, int]:
        system = system_of(document, system_id)
        if clear_models:
            system.pop("model_limits", None)
        if clear_keys:
            for record in (system.get("keys") or {}).values():
                record.pop("limits", None)
        if key_id is not None:
            owner = (system.get("keys") or {}).get(key_id)
            if owner is None:
                raise RegistryError(f"system '{system_id}' has no key '{key_id}'")
            return _store(owner, "limits", _changed(owner.get("limits"), changes, clear))
        if model is not None:
            per_model = system.setdefault("model_limits", {})
            limits = _store(per_model, model, _changed(per_model.get(model), changes, clear))
            if not per_model:
                del system["model_limits"]
            return limits
        return _store(system, "limits", _changed(system.get("limits"), changes, clear))

    return Change("systems limits", change)


def _store(owner: dict[str, Any], name: str, limits: dict[str, int]) -> dict[str, int]:
    """Keep `limits` under `name`; no entry at all when there are none."""
    if limits:
        owner[name] = limits
    else:
        owner.pop(name, None)
    return limits


def _changed(current: Any, changes: dict[str, int | None], clear: bool) -> dict[str, int]:
    limits: dict[str, int] = {} if clear else dict(current or {})
    for name, value in changes.items():
        if value is None:
            limits.pop(name, None)
        else:
            limits[name] = value
    return limits
