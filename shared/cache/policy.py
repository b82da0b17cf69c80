"""A system's opt-in to the response cache, as its registry entry says it:
`"cache": {"ttl_seconds": 3600, "scope": "faq", "models": ["gpt-4o-mini"]}`."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from shared.errors import ConfigError

DEFAULT_TTL_SECONDS = 3600
MAX_TTL_SECONDS = 30 * 86400
SCOPE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_FIELDS = frozenset({"ttl_seconds", "scope", "models"})


@dataclass(frozen=True)
class CachePolicy:
    ttl_seconds: int
    scope: str  # where its entries live: the system's own, or a shared scope's
    models: frozenset[str] | None  # None: every model the system may call

    def covers(self, model: str) -> bool:
        return self.models is None or model in self.models


def system_scope(system_id: str, created: str) -> str:
    """A system's own scope; a system deleted and made again under its id gets a new one."""
    return f"s:{system_id}:{hashlib.sha256(created.encode()).hexdigest()[:8]}"


def shared_scope(name: str) -> str:
    return f"x:{name}"


def parse_cache_policy(spec: Any, system_id: str, created: str, where: str) -> CachePolicy | None:
    if not spec:
        return None
    if not isinstance(spec, dict) or set(spec) - _FIELDS:
        raise ConfigError(f"{where}: cache takes ttl_seconds, scope and models")
    ttl = spec.get("ttl_seconds", DEFAULT_TTL_SECONDS)
    if not isinstance(ttl, int) or isinstance(ttl, bool) or not 1 <= ttl <= MAX_TTL_SECONDS:
        raise ConfigError(f"{where}: cache.ttl_seconds is 1-{MAX_TTL_SECONDS}")
    scope = spec.get("scope")
    if scope is not None and (not isinstance(scope, str) or not SCOPE_PATTERN.match(scope)):
        raise ConfigError(f"{where}: cache.scope is 1-64 letters, digits, '.', '_' or '-'")
    models = spec.get("models")
    if models is not None and (
        not isinstance(models, list) or not all(isinstance(m, str) and m for m in models)
    ):
        raise ConfigError(f"{where}: cache.models is a list of model names")
    return CachePolicy(
        ttl_seconds=ttl,
        scope=shared_scope(scope) if scope else system_scope(system_id, created),
        models=frozenset(models) if models else None,
    )
