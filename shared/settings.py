"""Settings, read from the environment once per process.

Every setting is listed in local.settings.sample.json and the README.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from shared.errors import ConfigError

DEFAULT_REGISTRY_PATH = ".tollgate/systems.json"
DEFAULT_SIMULATOR_URL = "http://127.0.0.1:7072"


@dataclass(frozen=True)
class Settings:
    config_path: str | None
    config_json: str | None
    simulator_url: str
    registry: str
    storage_connection_string: str | None
    registry_refresh_seconds: float
    keyvault_url: str | None
    azure_client_id: str | None
    keyvault_ca_file: str | None
    keyvault_verify_challenge_resource: bool
    secret_ttl_seconds: float
    max_body_bytes: int
    max_upload_bytes: int  # a multipart upload (files, audio, image edits), streamed
    upstream_connect_timeout: float
    upstream_read_timeout: float
    upstream_first_byte_timeout: float
    upstream_total_timeout: float
    sse_keepalive_seconds: float
    request_deadline_seconds: float  # the local host: a request's head and body arrive within
    max_connections: int  # the local host: connections held at once (more get a 503)
    upstream_pool_size: int
    log_level: str
    log_format: str
    redis_url: str | None
    redis_auth: str
    redis_username: str | None
    redis_failure_policy: str
    quota_timezone: str
    concurrency_lease_seconds: float
    default_completion_tokens: int
    max_attempts: int
    failover_budget_seconds: float
    default_cooldown_seconds: float
    breaker_failures: int
    breaker_open_seconds: float
    usage_records: str
    content_log: str
    audit_log: str
    allowed_networks: str
    entra_tenant_id: str | None
    entra_audiences: tuple[str, ...]
    entra_jwks_url: str | None
    trusted_proxies: str
    appinsights_connection_string: str | None
    usage_flush_seconds: float
    background_watch_seconds: float = 6 * 3600.0
    batch_watch_seconds: float = 26 * 3600.0  # a batch's 24-hour window, and its finalizing
    batch_first_check_seconds: float = 10.0  # then doubling, up to ten minutes
    budget_alert_thresholds: tuple[float, ...] = (0.5, 0.8, 1.0)  # fractions of a budget
    budget_alert_url: str | None = None  # the operator's webhook for budget alerts
    cache_max_entry_bytes: int = 1 << 20  # a larger answer is not kept
    cache_memory_bytes: int = 64 << 20  # the in-process cache's bound (without Redis)
    content_safety_endpoint: str | None = None  # Azure AI Content Safety (None: local checks)
    content_safety_key_secret: str | None = None  # a key's secret name; None: managed identity
    content_safety_ca_file: str | None = None  # a private CA (on premises, tests)
    content_safety_timeout_seconds: float = 2.0  # one check; then the outage policy decides
    prometheus: bool = False  # serve metrics as Prometheus text on /metrics
    metrics_networks: str = "127.0.0.1/32,::1/128"  # who may read /metrics (and /status)
    admin_key_secret: str | None = None  # the secret holding the admin key (Bearer), if any
    status_page: bool = False  # serve the operators' status page on /status
    admin_role: str = "Tollgate.Admin"  # an Entra ID app role that opens /status

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        return cls(
            config_path=_opt(e, "TOLLGATE_CONFIG"),
            config_json=_opt(e, "TOLLGATE_CONFIG_JSON"),
            simulator_url=e.get("TOLLGATE_SIMULATOR_URL", DEFAULT_SIMULATOR_URL).rstrip("/"),
            registry=e.get("TOLLGATE_REGISTRY", DEFAULT_REGISTRY_PATH),
            storage_connection_string=_opt(e, "TOLLGATE_STORAGE_CONNECTION_STRING"),
            registry_refresh_seconds=_float(e, "TOLLGATE_REGISTRY_REFRESH_SECONDS", 10.0),
            keyvault_url=_opt(e, "TOLLGATE_KEYVAULT_URL"),
            azure_client_id=_opt(e, "AZURE_CLIENT_ID"),
            keyvault_ca_file=_opt(e, "TOLLGATE_KEYVAULT_CA_FILE"),
            keyvault_verify_challenge_resource=_bool(
                e, "TOLLGATE_KEYVAULT_VERIFY_CHALLENGE_RESOURCE", True
            ),
            secret_ttl_seconds=_float(e, "TOLLGATE_SECRET_TTL_SECONDS", 300.0),
            max_body_bytes=int(_float(e, "TOLLGATE_MAX_BODY_BYTES", 16 * 1024 * 1024)),
            # The Functions host's own request limit; audio is held to OpenAI's 25 MiB as well.
            max_upload_bytes=int(_float(e, "TOLLGATE_MAX_UPLOAD_BYTES", 100 * 1024 * 1024)),
            upstream_connect_timeout=_float(e, "TOLLGATE_UPSTREAM_CONNECT_TIMEOUT", 10.0),
            upstream_read_timeout=_float(e, "TOLLGATE_UPSTREAM_READ_TIMEOUT", 300.0),
            upstream_first_byte_timeout=_float(e, "TOLLGATE_UPSTREAM_FIRST_BYTE_TIMEOUT", 180.0),
            upstream_total_timeout=_float(e, "TOLLGATE_UPSTREAM_TOTAL_TIMEOUT", 600.0),
            sse_keepalive_seconds=_float(e, "TOLLGATE_SSE_KEEPALIVE_SECONDS", 15.0),
            request_deadline_seconds=_float(e, "TOLLGATE_REQUEST_DEADLINE_SECONDS", 30.0),
            max_connections=int(_float(e, "TOLLGATE_MAX_CONNECTIONS", 2048)),
            upstream_pool_size=int(_float(e, "TOLLGATE_UPSTREAM_POOL_SIZE", 256)),
            log_level=e.get("TOLLGATE_LOG_LEVEL", "INFO").upper(),
            log_format=_choice(e, "TOLLGATE_LOG_FORMAT", ("json", "text")),
            redis_url=_opt(e, "TOLLGATE_REDIS_URL"),
            redis_auth=_choice(e, "TOLLGATE_REDIS_AUTH", ("url", "entra")),
            redis_username=_opt(e, "TOLLGATE_REDIS_USERNAME"),
            redis_failure_policy=_choice(e, "TOLLGATE_REDIS_FAILURE_POLICY", ("open", "closed")),
            quota_timezone=e.get("TOLLGATE_QUOTA_TIMEZONE", "").strip() or "UTC",
            concurrency_lease_seconds=_float(e, "TOLLGATE_CONCURRENCY_LEASE_SECONDS", 600.0),
            default_completion_tokens=int(_float(e, "TOLLGATE_DEFAULT_COMPLETION_TOKENS", 1024)),
            max_attempts=max(1, int(_float(e, "TOLLGATE_MAX_ATTEMPTS", 3))),
            failover_budget_seconds=_float(e, "TOLLGATE_FAILOVER_BUDGET_SECONDS", 60.0),
            default_cooldown_seconds=_float(e, "TOLLGATE_DEFAULT_COOLDOWN_SECONDS", 10.0),
            breaker_failures=max(1, int(_float(e, "TOLLGATE_BREAKER_FAILURES", 5))),
            breaker_open_seconds=_float(e, "TOLLGATE_BREAKER_OPEN_SECONDS", 30.0),
            usage_records=e.get("TOLLGATE_USAGE_RECORDS", "").strip() or ".tollgate/usage",
            content_log=e.get("TOLLGATE_CONTENT_LOG", "").strip() or ".tollgate/content",
            audit_log=e.get("TOLLGATE_AUDIT_LOG", "").strip() or ".tollgate/audit",
            allowed_networks=e.get("TOLLGATE_ALLOWED_NETWORKS", "").strip(),
            entra_tenant_id=_opt(e, "TOLLGATE_ENTRA_TENANT_ID"),
            entra_audiences=tuple(
                a.strip() for a in e.get("TOLLGATE_ENTRA_AUDIENCES", "").split(",") if a.strip()
            ),
            entra_jwks_url=_opt(e, "TOLLGATE_ENTRA_JWKS_URL"),
            trusted_proxies=e.get("TOLLGATE_TRUSTED_PROXIES", "").strip(),
            usage_flush_seconds=_float(e, "TOLLGATE_USAGE_FLUSH_SECONDS", 5.0),
            appinsights_connection_string=_opt(e, "APPLICATIONINSIGHTS_CONNECTION_STRING"),
            background_watch_seconds=_float(e, "TOLLGATE_BACKGROUND_WATCH_SECONDS", 6 * 3600.0),
            batch_watch_seconds=_float(e, "TOLLGATE_BATCH_WATCH_SECONDS", 26 * 3600.0),
            batch_first_check_seconds=_float(e, "TOLLGATE_BATCH_FIRST_CHECK_SECONDS", 10.0),
            budget_alert_thresholds=_fractions(e, "TOLLGATE_BUDGET_ALERT_THRESHOLDS"),
            budget_alert_url=e.get("TOLLGATE_BUDGET_ALERT_URL") or None,
            cache_max_entry_bytes=int(_float(e, "TOLLGATE_CACHE_MAX_ENTRY_BYTES", 1 << 20)),
            cache_memory_bytes=int(_float(e, "TOLLGATE_CACHE_MEMORY_BYTES", 64 << 20)),
            content_safety_endpoint=_opt(e, "TOLLGATE_CONTENT_SAFETY_ENDPOINT"),
            content_safety_key_secret=_opt(e, "TOLLGATE_CONTENT_SAFETY_KEY_SECRET"),
            content_safety_ca_file=_opt(e, "TOLLGATE_CONTENT_SAFETY_CA_FILE"),
            content_safety_timeout_seconds=_float(
                e, "TOLLGATE_CONTENT_SAFETY_TIMEOUT_SECONDS", 2.0
            ),
            prometheus=_bool(e, "TOLLGATE_PROMETHEUS", False),
            metrics_networks=e.get("TOLLGATE_METRICS_NETWORKS", "").strip()
            or "127.0.0.1/32,::1/128",
            admin_key_secret=_opt(e, "TOLLGATE_ADMIN_KEY_SECRET"),
            status_page=_bool(e, "TOLLGATE_STATUS_PAGE", False),
            admin_role=e.get("TOLLGATE_ADMIN_ROLE", "").strip() or "Tollgate.Admin",
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()


def _opt(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"setting {name} must be a number") from None
    if value < 0:
        raise ConfigError(f"setting {name} must not be negative")
    return value


def _fractions(env: Mapping[str, str], name: str) -> tuple[float, ...]:
    """Comma-separated fractions of a budget, each in (0, 1]; default 0.5, 0.8, 1."""
    raw = env.get(name, "").strip()
    if not raw:
        return (0.5, 0.8, 1.0)
    try:
        values = tuple(sorted(float(part) for part in raw.split(",") if part.strip()))
    except ValueError:
        raise ConfigError(f"setting {name} must be fractions such as 0.5,0.8,1") from None
    if not values or not all(0 < v <= 1 for v in values):
        raise ConfigError(f"setting {name}: each fraction must be above 0 and at most 1")
    return values


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    """One of `choices`; the first is the default."""
    raw = env.get(name, "").strip().lower() or choices[0]
    if raw not in choices:
        raise ConfigError(f"setting {name} must be one of {', '.join(choices)}")
    return raw


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"setting {name} must be true or false")


DEFAULT_PROBE_SCHEDULE = "0 */15 * * * *"


@dataclass(frozen=True)
class ProbeSettings:
    """The latency probe's settings, read at each run (the timer fires every few minutes)."""

    enabled: bool
    schedule: str
    requests: int
    models: tuple[str, ...]  # empty: every chat model in the configuration
    results: str
    spool: str
    gateway_url: str
    key_secret: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ProbeSettings:
        e = os.environ if env is None else env
        hostname = e.get("WEBSITE_HOSTNAME", "")
        default_url = f"https://{hostname}" if hostname else "http://127.0.0.1:7071"
        models = e.get("TOLLGATE_PROBE_MODELS", "")
        return cls(
            enabled=_bool(e, "TOLLGATE_PROBE_ENABLED", True),
            schedule=e.get("TOLLGATE_PROBE_SCHEDULE", "").strip() or DEFAULT_PROBE_SCHEDULE,
            requests=max(1, int(_float(e, "TOLLGATE_PROBE_REQUESTS", 5))),
            models=tuple(m.strip() for m in models.split(",") if m.strip()),
            results=e.get("TOLLGATE_PROBE_RESULTS", "").strip() or ".tollgate/probe-results",
            spool=e.get("TOLLGATE_PROBE_SPOOL", "").strip() or ".tollgate/probe-spool",
            gateway_url=(e.get("TOLLGATE_PROBE_GATEWAY_URL", "").strip() or default_url).rstrip(
                "/"
            ),
            key_secret=e.get("TOLLGATE_PROBE_KEY_SECRET", "").strip() or "probe-gateway-key",
        )
