"""The systems registry: calling systems, their key hashes and the models they may use."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from shared.auth import keys
from shared.cache.policy import CachePolicy, parse_cache_policy
from shared.errors import ConfigError
from shared.guardrails.policy import BLOCKLIST_NAME, ContentPolicy, parse_content_policy
from shared.limits.config import (
    NO_LIMITS,
    Limits,
    LimitsError,
    Scope,
    applicable_scopes,
    parse_limits,
)
from shared.protection.netacl import AllowList
from shared.protection.pii import Redactor
from shared.usage.content import ContentLogging, parse_content_logging

if TYPE_CHECKING:
    from shared.auth.entra import EntraMapping

ALL_MODELS = "*"
SYSTEM_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class RegistryError(ConfigError):
    """The registry document is malformed, or an edit to it is invalid."""


@dataclass(frozen=True)
class KeyRecord:
    key_id: str
    system_id: str
    hash: str
    label: str
    created: str
    revoked: str | None
    limits: Limits = NO_LIMITS

    @property
    def active(self) -> bool:
        return self.revoked is None


@dataclass(frozen=True)
class System:
    id: str
    name: str
    models: frozenset[str]
    disabled: bool
    limits: Limits = NO_LIMITS
    model_limits: Mapping[str, Limits] = field(default_factory=dict)
    networks: AllowList = field(default_factory=AllowList)
    redactor: Redactor | None = None  # PII redaction before the request leaves
    content_logging: ContentLogging | None = None  # None: prompts and completions not kept
    cache: CachePolicy | None = None  # None: its answers are never kept or replayed
    content_policy: ContentPolicy | None = None  # None: prompts and answers are not checked

    def allows(self, model: str) -> bool:
        return ALL_MODELS in self.models or model in self.models


@dataclass(frozen=True)
class Caller:
    system: System
    key_id: str
    key_limits: Limits = NO_LIMITS

    def scopes(self, model: str) -> list[Scope]:
        """The limits that apply to this caller's request for `model`."""
        model_limits = self.system.model_limits.get(model, NO_LIMITS)
        return applicable_scopes(
            self.system.limits, model_limits, self.key_limits, model, self.key_id
        )


class Registry:
    """An immutable, parsed snapshot of the registry document."""

    def __init__(
        self,
        systems: Mapping[str, System],
        key_records: Mapping[str, KeyRecord],
        entra: tuple[EntraMapping, ...] = (),
    ):
        self.systems = dict(systems)
        self._keys = dict(key_records)
        self.entra = entra  # which Entra ID apps and roles each system accepts

    @classmethod
    def empty(cls) -> Registry:
        return cls({}, {})

    @classmethod
    def parse(cls, document: Any) -> Registry:
        systems: dict[str, System] = {}
        records: dict[str, KeyRecord] = {}
        entra: list[EntraMapping] = []
        blocklists = blocklists_of(document)
        for system_id, spec in systems_of(document).items():
            systems[system_id] = _with_terms(_parse_system(system_id, spec), blocklists)
            for key_id, key_spec in (spec.get("keys") or {}).items():
                records[key_id] = _parse_key(system_id, key_id, key_spec)
            if spec.get("entra"):
                entra.append(_parse_entra(system_id, spec["entra"]))
        return cls(systems, records, tuple(entra))

    def caller_for_app(self, system_id: str, app_id: str) -> Caller | None:
        system = self.systems.get(system_id)
        if system is None or system.disabled:
            return None
        return Caller(system=system, key_id=f"entra:{app_id}")

    def authenticate(self, key: str) -> Caller | None:
        key_id = keys.key_id_of(key)
        record = self._keys.get(key_id) if key_id else None
        if record is None or not keys.matches(key, record.hash) or not record.active:
            return None
        system = self.systems.get(record.system_id)
        if system is None or system.disabled:
            return None
        return Caller(system=system, key_id=record.key_id, key_limits=record.limits)

    def keys_of(self, system_id: str | None = None) -> list[KeyRecord]:
        return [r for r in self._keys.values() if system_id in (None, r.system_id)]


def systems_of(document: Any) -> dict[str, Any]:
    if not isinstance(document, dict) or not isinstance(document.get("systems", {}), dict):
        raise RegistryError("registry document must be an object with a 'systems' object")
    systems: dict[str, Any] = document.get("systems", {})
    return systems


def blocklists_of(document: Any) -> dict[str, tuple[str, ...]]:
    """The registry's blocklists: `"blocklists": {"name": {"terms": [...]}}`."""
    raw = document.get("blocklists") or {} if isinstance(document, dict) else {}
    if not isinstance(raw, dict):
        raise RegistryError("'blocklists' must be an object of named blocklists")
    lists: dict[str, tuple[str, ...]] = {}
    for name, spec in raw.items():
        terms = spec.get("terms") if isinstance(spec, dict) else None
        if not BLOCKLIST_NAME.match(name) or not isinstance(terms, list):
            raise RegistryError(f"blocklist '{name}' needs a name and a list of 'terms'")
        if not all(isinstance(t, str) and t.strip() for t in terms):
            raise RegistryError(f"blocklist '{name}': every term is a non-empty string")
        lists[name] = tuple(terms)
    return lists


def _with_terms(system: System, blocklists: dict[str, tuple[str, ...]]) -> System:
    policy = system.content_policy
    if policy is None or not policy.blocklists:
        return system
    missing = [name for name in policy.blocklists if name not in blocklists]
    if missing:
        raise RegistryError(f"system '{system.id}' names unknown blocklists {missing}")
    terms = tuple((name, term) for name in policy.blocklists for term in blocklists[name])
    return replace(system, content_policy=replace(policy, terms=terms))


def _parse_system(system_id: str, spec: Any) -> System:
    if not isinstance(spec, dict):
        raise RegistryError(f"system '{system_id}' must be an object")
    models = spec.get("models", [])
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
        raise RegistryError(f"system '{system_id}': 'models' must be a list of names")
    where = f"system '{system_id}'"
    model_limits = spec.get("model_limits") or {}
    if not isinstance(model_limits, dict):
        raise RegistryError(f"{where}: 'model_limits' must be an object")
    try:
        return System(
            id=system_id,
            name=str(spec.get("name", "")),
            models=frozenset(models),
            disabled=bool(spec.get("disabled", False)),
            limits=parse_limits(spec.get("limits"), where),
            model_limits={
                m: parse_limits(v, f"{where} model {m}") for m, v in model_limits.items()
            },
            networks=AllowList(spec.get("allowed_networks") or [], f"{where} allowed_networks"),
            redactor=Redactor(spec["redaction"]) if spec.get("redaction") else None,
            content_logging=parse_content_logging(spec.get("content_logging"), where),
            cache=parse_cache_policy(
                spec.get("cache"), system_id, str(spec.get("created", "")), where
            ),
            content_policy=parse_content_policy(spec.get("content_policy"), where),
        )
    except (LimitsError, ValueError) as exc:
        raise RegistryError(str(exc)) from None


def _parse_entra(system_id: str, spec: Any) -> EntraMapping:
    # Imported here: shared.auth.entra brings aiohttp (for its signing keys), which the
    # registry commands need only for a system that Entra ID apps call.
    from shared.auth.entra import EntraMapping

    where = f"system '{system_id}' entra"
    if not isinstance(spec, dict):
        raise RegistryError(f"{where} must be an object")
    app_ids, roles = spec.get("app_ids", []), spec.get("roles", [])
    for value in (app_ids, roles):
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise RegistryError(f"{where}: app_ids and roles are lists of names")
    return EntraMapping(system_id, frozenset(app_ids), frozenset(roles))


def _parse_key(system_id: str, key_id: str, spec: Any) -> KeyRecord:
    if not isinstance(spec, dict) or not isinstance(spec.get("hash"), str):
        raise RegistryError(f"key '{key_id}' of system '{system_id}' needs a 'hash'")
    try:
        limits = parse_limits(spec.get("limits"), f"key '{key_id}'")
    except LimitsError as exc:
        raise RegistryError(str(exc)) from None
    return KeyRecord(
        key_id=key_id,
        system_id=system_id,
        hash=spec["hash"],
        label=str(spec.get("label", "")),
        created=str(spec.get("created", "")),
        revoked=spec.get("revoked"),
        limits=limits,
    )
