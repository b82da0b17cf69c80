"""The per-process gateway state: configuration, registry, secrets and upstream pool.

Built once per worker process on first use (the Functions host has no start-up hook),
so configuration is parsed once and never per request.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.errors import GatewayError
from shared.limit_store import LimitStore
from shared.limit_store_memory import MemoryLimitStore
from shared.limiter import Limiter
from shared.registry_cache import RegistryCache
from shared.registry_store import store_from_settings
from shared.secrets import CachedSecrets, build_credential, secret_provider_from
from shared.settings import Settings, get_settings
from shared.upstream_client import UpstreamClient
from shared.upstreams import ConfigError, GatewayConfig, load_config

log = logging.getLogger("tollgate")


@dataclass
class Gateway:
    settings: Settings
    config: GatewayConfig
    registry: RegistryCache
    secrets: CachedSecrets
    client: UpstreamClient
    limiter: Limiter

    @classmethod
    def from_settings(cls, settings: Settings) -> Gateway:
        provider = secret_provider_from(settings)
        return cls(
            settings=settings,
            config=load_config(settings),
            registry=RegistryCache(
                store_from_settings(settings), settings.registry_refresh_seconds
            ),
            secrets=CachedSecrets(provider, ttl_seconds=settings.secret_ttl_seconds),
            client=UpstreamClient(
                settings.upstream_connect_timeout,
                settings.upstream_read_timeout,
                settings.upstream_pool_size,
            ),
            limiter=build_limiter(settings),
        )

    async def aclose(self) -> None:
        await self.limiter.aclose()
        await self.client.aclose()
        await self.secrets.aclose()
        await self.registry.aclose()


def build_limiter(settings: Settings) -> Limiter:
    try:
        zone = ZoneInfo(settings.quota_timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"TOLLGATE_QUOTA_TIMEZONE: unknown zone {settings.quota_timezone!r}"
        ) from None
    local: LimitStore | None = None
    if settings.redis_url:
        from shared.limit_store_redis import RedisLimitStore, redis_client  # redis-py: ~20 MB

        shared: LimitStore = RedisLimitStore(
            redis_client(settings.redis_url, **_redis_auth(settings))
        )
        local = MemoryLimitStore()
    else:
        shared = MemoryLimitStore()
    fail_open = settings.redis_failure_policy == "open"
    return Limiter(shared, local, fail_open, zone, settings.concurrency_lease_seconds)


def _redis_auth(settings: Settings) -> dict[str, Any]:
    if settings.redis_auth != "entra":
        return {}  # the URL carries the password, if any (rediss://:<key>@host:6380)
    if not settings.redis_username:
        raise ConfigError("TOLLGATE_REDIS_AUTH=entra needs TOLLGATE_REDIS_USERNAME (object id)")
    from shared.redis_auth import EntraIdCredentials

    credential = build_credential(settings.azure_client_id)
    return {"credential_provider": EntraIdCredentials(credential, settings.redis_username)}


_gateway: Gateway | None = None


def get_gateway() -> Gateway:
    global _gateway
    if _gateway is None:
        try:
            _gateway = Gateway.from_settings(get_settings())
        except (ValueError, OSError) as exc:  # ConfigError is a ValueError
            log.error("gateway configuration rejected: %s", exc)
            raise GatewayError(
                500,
                "The gateway is misconfigured.",
                type="server_error",
                code="gateway_misconfigured",
            ) from exc
        logging.getLogger("tollgate").setLevel(_gateway.settings.log_level)
    return _gateway


async def start_gateway() -> None:
    """Build the gateway at host start-up so that a bad configuration stops the host."""
    try:
        get_gateway()
    except GatewayError as exc:
        raise SystemExit(f"tollgate: {exc.__cause__}") from None


async def close_gateway() -> None:
    global _gateway
    if _gateway is not None:
        await _gateway.aclose()
        _gateway = None
