"""The per-process gateway state: configuration, registry, secrets and upstream pool, and the
parts whose kind depends on configuration (Redis-backed or in-process).

Built once per worker process on first use (the Functions host has no start-up hook),
so configuration is parsed once and never per request.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.auth.entra import EntraValidator, entra_jwks_url
from shared.auth.jwks import JwksCache
from shared.auth.secret_cache import CachedSecrets
from shared.auth.secrets import build_credential
from shared.auth.upstream_credentials import secret_provider_from
from shared.cache.store import AnswerStore, MemoryAnswers
from shared.errors import ConfigError, GatewayError, server_error
from shared.guardrails.checks import ContentChecks
from shared.guardrails.content_safety import ContentSafety
from shared.host.tuning import tune_process
from shared.limits.config import NO_LIMITS
from shared.limits.limiter import Limiter
from shared.limits.plan import cost_units
from shared.limits.store import LimitStore
from shared.limits.store_memory import MemoryLimitStore
from shared.protection.client_ip import TrustedProxies
from shared.protection.netacl import AllowList
from shared.registry.cache import RegistryCache
from shared.registry.store import store_from_settings
from shared.registry.systems import Caller
from shared.settings import Settings, get_settings
from shared.storage.append import record_writer
from shared.upstream.balancer import Balancer
from shared.upstream.client import UpstreamClient
from shared.upstream.config import GatewayConfig, load_config
from shared.upstream.health import HealthStore, MemoryHealthStore
from shared.upstream.objects import MemoryObjects, ObjectOwners, RedisObjects
from shared.upstream.owners import MemoryOwners, RedisOwners, ResponseOwners
from shared.upstream.relay import Dispatcher, FailoverPolicy
from shared.usage.account import Account
from shared.usage.alerts import BudgetAlerts, MemoryMarks, RedisMarks, post_json
from shared.usage.background import BackgroundMeter, Lookup, MemoryPending, RedisPending
from shared.usage.batches import BatchMeter, Charge, Lines, MemoryClaims, RedisClaims
from shared.usage.batches import Lookup as BatchLookup
from shared.usage.content import content_sink
from shared.usage.sink import UsageSink
from shared.usage.telemetry import configure_telemetry, set_providers

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.credentials import CredentialProvider

log = logging.getLogger("tollgate")


@dataclass
class Gateway:
    settings: Settings
    config: GatewayConfig
    registry: RegistryCache
    secrets: CachedSecrets
    client: UpstreamClient
    limiter: Limiter
    dispatcher: Dispatcher
    usage: UsageSink
    content: UsageSink  # opted-in systems' prompts and completions
    networks: AllowList
    proxies: TrustedProxies
    entra: EntraValidator | None
    owners: ResponseOwners
    background: BackgroundMeter
    objects: ObjectOwners  # files and batches, bound to their systems
    batches: BatchMeter
    alerts: BudgetAlerts
    answers: AnswerStore  # the response cache's
    checks: ContentChecks  # content policies
    redis: Any = None  # the shared Redis client (deployment health, objects, cache), if any
    admins: AllowList | None = None  # who may read /metrics, besides an admin key

    def account(self, request_id: str, route: str, operation: str, client_ip: str) -> Account:
        account = Account(self.usage, self.config.cost, request_id, route, operation, client_ip)
        account.currency = self.config.currency
        return account

    @classmethod
    def from_settings(cls, settings: Settings) -> Gateway:
        secrets = CachedSecrets(secret_provider_from(settings), settings.secret_ttl_seconds)
        client = UpstreamClient(
            settings.upstream_connect_timeout,
            settings.upstream_read_timeout,
            settings.upstream_pool_size,
            settings.upstream_first_byte_timeout,
        )
        redis_auth = _redis_auth(settings) if settings.redis_url else {}
        redis = redis_from(settings, redis_auth)  # deployment health (limits: their own channel)
        policy = FailoverPolicy(
            settings.max_attempts,
            settings.failover_budget_seconds,
            settings.default_cooldown_seconds,
            settings.upstream_total_timeout,
            settings.sse_keepalive_seconds,
        )
        configure_telemetry(settings.appinsights_connection_string, settings.prometheus)
        writer = record_writer(
            settings.usage_records, settings.storage_connection_string, settings.azure_client_id
        )
        config = load_config(settings)
        set_providers({name: provider_name(u.kind) for name, u in config.upstreams.items()})
        limiter = build_limiter(settings, redis_auth.get("credential_provider"))
        limiter.currency = config.currency
        alerts = BudgetAlerts(
            settings.budget_alert_thresholds,
            RedisMarks(redis) if redis is not None else MemoryMarks(),
            post_json,
            settings.budget_alert_url,
            config.currency,
        )
        limiter.spent = alerts.spent_soon
        dispatcher = Dispatcher(client, secrets, build_balancer(settings, redis), policy)
        usage = UsageSink(writer, settings.usage_flush_seconds)
        registry = RegistryCache(store_from_settings(settings), settings.registry_refresh_seconds)
        return cls(
            settings=settings,
            config=config,
            registry=registry,
            secrets=secrets,
            client=client,
            limiter=limiter,
            dispatcher=dispatcher,
            usage=usage,
            content=content_sink(
                settings.content_log,
                settings.storage_connection_string,
                settings.azure_client_id,
                settings.usage_flush_seconds,
            ),
            networks=AllowList(settings.allowed_networks, "TOLLGATE_ALLOWED_NETWORKS"),
            proxies=TrustedProxies(settings.trusted_proxies, "TOLLGATE_TRUSTED_PROXIES"),
            entra=build_entra(settings),
            owners=RedisOwners(redis) if redis is not None else MemoryOwners(),
            background=BackgroundMeter(
                RedisPending(redis) if redis is not None else MemoryPending(),
                usage,
                config.cost,
                limiter.settle_held,
                background_lookup(config, dispatcher),
                settings.background_watch_seconds,
            ),
            objects=RedisObjects(redis) if redis is not None else MemoryObjects(),
            batches=BatchMeter(
                RedisClaims(redis) if redis is not None else MemoryClaims(),
                usage,
                config.cost,
                quota_charge(registry, limiter),
                batch_lookup(config, dispatcher),
                batch_lines(config, dispatcher),
                settings.batch_watch_seconds,
                settings.batch_first_check_seconds,
            ),
            alerts=alerts,
            answers=answer_store(settings, redis),
            checks=ContentChecks(content_safety(settings, secrets)),
            redis=redis,
            admins=AllowList(settings.metrics_networks, "TOLLGATE_METRICS_NETWORKS"),
        )

    async def aclose(self) -> None:
        if self.entra is not None:
            await self.entra.aclose()
        await self.background.aclose()  # its last records go to the usage sink
        await self.batches.aclose()
        await self.alerts.aclose()
        await self.answers.aclose()
        await self.checks.aclose()
        await self.usage.aclose()
        await self.content.aclose()
        await self.limiter.aclose()
        await self.client.aclose()
        await self.secrets.aclose()
        await self.registry.aclose()


def provider_name(kind: str) -> str:
    """gen_ai.provider.name, as the OpenTelemetry GenAI conventions name providers."""
    return {"azure": "azure.ai.openai", "foundry": "azure.ai.inference"}.get(kind, "openai")


def content_safety(settings: Settings, secrets: CachedSecrets) -> ContentSafety | None:
    """Azure AI Content Safety, signed in as the managed identity or with a key's secret."""
    endpoint = settings.content_safety_endpoint
    if not endpoint:
        return None
    key_secret = settings.content_safety_key_secret

    async def credential() -> Any:
        if key_secret:
            from azure.core.credentials import AzureKeyCredential

            return AzureKeyCredential(await secrets.get(key_secret))
        return build_credential(settings.azure_client_id)

    return ContentSafety(
        endpoint,
        credential,
        settings.content_safety_timeout_seconds,
        settings.content_safety_ca_file,
    )


def answer_store(settings: Settings, redis: Redis | None) -> AnswerStore:
    if redis is None:
        return MemoryAnswers(settings.cache_memory_bytes, settings.cache_max_entry_bytes)
    from shared.cache.store_redis import RedisAnswers

    return RedisAnswers(redis, settings.cache_max_entry_bytes)


def background_lookup(config: GatewayConfig, dispatcher: Dispatcher) -> Lookup:
    """How the background meter looks at a response on the deployment that holds it."""

    async def lookup(deployment: str, response_id: str) -> dict[str, Any] | None:
        upstream = config.upstreams.get(deployment)
        if upstream is None:
            return {}
        url = upstream.stored_response_url(response_id, "")
        return await dispatcher.peek(upstream, url, _watch_id())

    return lookup


def batch_lookup(config: GatewayConfig, dispatcher: Dispatcher) -> BatchLookup:
    """How the batch meter looks at a batch on the files resource."""

    async def lookup(upstream_name: str, batch_id: str) -> dict[str, Any] | None:
        upstream = config.upstreams.get(upstream_name)
        if upstream is None:
            return {}
        url = upstream.objects_url(f"batches/{batch_id}")
        return await dispatcher.peek(upstream, url, _watch_id())

    return lookup


def batch_lines(config: GatewayConfig, dispatcher: Dispatcher) -> Lines:
    """How the batch meter reads a batch's output file."""

    def lines(upstream_name: str, file_id: str) -> AsyncIterator[bytes]:
        upstream = config.upstreams[upstream_name]
        url = upstream.objects_url(f"files/{file_id}/content")
        return dispatcher.lines(upstream, url, _watch_id())

    return lines


def quota_charge(registry: RegistryCache, limiter: Limiter) -> Charge:
    """How a batch's tokens reach the quotas of the system, model and key that created it."""

    async def charge(system_id: str, key_id: str, model: str, tokens: int, cost: float) -> None:
        current = await registry.current()
        system = current.systems.get(system_id)
        if system is None:  # deleted since: its counters went with it
            return
        key = next((k for k in current.keys_of(system_id) if k.key_id == key_id), None)
        caller = Caller(system, key_id, key.limits if key is not None else NO_LIMITS)
        await limiter.charge(system_id, caller.scopes(model), tokens, cost_units(cost))

    return charge


def _watch_id() -> str:
    return "tollgate-watch-" + os.urandom(8).hex()


def redis_from(settings: Settings, auth: dict[str, Any]) -> Redis | None:
    if not settings.redis_url:
        return None
    from shared.storage.redis_client import redis_client  # redis-py (~20 MB) only when configured

    return redis_client(settings.redis_url, **auth)


def build_limiter(settings: Settings, credentials: CredentialProvider | None = None) -> Limiter:
    try:
        zone = ZoneInfo(settings.quota_timezone)
    except (ZoneInfoNotFoundError, ValueError):
        message = f"TOLLGATE_QUOTA_TIMEZONE: unknown zone {settings.quota_timezone!r}"
        raise ConfigError(message) from None
    fail_open = settings.redis_failure_policy == "open"
    if not settings.redis_url:
        return Limiter(
            MemoryLimitStore(), None, fail_open, zone, settings.concurrency_lease_seconds
        )
    from shared.limits.redis_channel import RedisChannel
    from shared.limits.store_redis import RedisLimitStore

    channel = RedisChannel(settings.redis_url, credentials=credentials)
    shared: LimitStore = RedisLimitStore(channel)
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


_gateway: Gateway | None = None


def get_gateway() -> Gateway:
    global _gateway
    if _gateway is None:
        try:
            _gateway = Gateway.from_settings(get_settings())
        except (ConfigError, OSError) as exc:
            log.error("gateway configuration rejected: %s", exc)
            message = "The gateway is misconfigured."
            raise server_error(500, message, "gateway_misconfigured") from exc
        logging.getLogger("tollgate").setLevel(_gateway.settings.log_level)
        tune_process()
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
