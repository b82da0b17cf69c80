"""Building the parts whose kind depends on configuration: Redis-backed or in-process."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.auth.entra import EntraValidator, entra_jwks_url
from shared.auth.jwks import JwksCache
from shared.auth.secrets import build_credential
from shared.errors import ConfigError
from shared.limits.limiter import Limiter
from shared.limits.store import LimitStore
from shared.limits.store_memory import MemoryLimitStore
from shared.settings import Settings
from shared.upstream.balancer import Balancer
from shared.upstream.health import HealthStore, MemoryHealthStore

if TYPE_CHECKING:
    from redis.asyncio import Redis


def redis_from(settings: Settings) -> Redis | None:
    if not settings.redis_url:
        return None
    from shared.limits.store_redis import redis_client  # redis-py (~20 MB) only when configured

    return redis_client(settings.redis_url, **_redis_auth(settings))


def build_limiter(settings: Settings, redis: Redis | None) -> Limiter:
    try:
        zone = ZoneInfo(settings.quota_timezone)
    except (ZoneInfoNotFoundError, ValueError):
        message = f"TOLLGATE_QUOTA_TIMEZONE: unknown zone {settings.quota_timezone!r}"
        raise ConfigError(message) from None
    fail_open = settings.redis_failure_policy == "open"
    if redis is None:
        return Limiter(
            MemoryLimitStore(), None, fail_open, zone, settings.concurrency_lease_seconds
        )
    from shared.limits.store_redis import RedisLimitStore

    shared: LimitStore = RedisLimitStore(redis)
    return Limiter(shared, MemoryLimitStore(), fail_open, zone, settings.concurrency_lease_seconds)


def build_balancer(settings: Settings, redis: Redis | None) -> Balancer:
    store: HealthStore = MemoryHealthStore()
    if redis is not None:
        from shared.upstream.health_redis import RedisHealthStore

        store = RedisHealthStore(redis)
    return Balancer(store, settings.breaker_failures, settings.breaker_open_seconds)


def _redis_auth(settings: Settings) -> dict[str, Any]:
    if settings.redis_auth != "entra":
        return {}  # the URL carries the password, if any (rediss://:<key>@host:6380)
    if not settings.redis_username:
        raise ConfigError("TOLLGATE_REDIS_AUTH=entra needs TOLLGATE_REDIS_USERNAME (object id)")
    from shared.storage.redis_client import EntraIdCredentials

    credential = build_credential(settings.azure_client_id)
    return {"credential_provider": EntraIdCredentials(credential, settings.redis_username)}


def build_entra(settings: Settings) -> EntraValidator | None:
    """Entra ID callers are accepted when a tenant and the gateway's audiences are set."""
    if not settings.entra_tenant_id:
        return None
    if not settings.entra_audiences:
        raise ConfigError("TOLLGATE_ENTRA_TENANT_ID needs TOLLGATE_ENTRA_AUDIENCES")
    tenant = settings.entra_tenant_id
    jwks = JwksCache(settings.entra_jwks_url or entra_jwks_url(tenant))
    return EntraValidator(tenant, settings.entra_audiences, jwks=jwks)
