"""Gateway metrics through the OpenTelemetry API, exported to Application Insights only when
configured.

Without an SDK provider the API hands out proxy instruments whose calls do nothing, so local
runs, CI and the benchmark pay almost nothing. Once a provider is installed (by
`configure_telemetry`, by the Functions worker, or by a test through `use_meter_provider`) the
same instruments record. Attribute values come only from a usage record's bounded fields:
never message text, never a key.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any, Literal

from opentelemetry import metrics

from shared.usage.record import UsageRecord

log = logging.getLogger("tollgate.telemetry")

METER_NAME = "tollgate"

UpstreamErrorKind = Literal["429", "5xx", "timeout", "unreachable", "rejected"]

# Codes under which record.model is still the client's unvalidated string: charting it would
# let any caller mint new time series.
_UNRESOLVED_MODEL_CODES = frozenset({"model_not_found", "invalid_model_name", "missing_model"})

# In ms; LLM calls run from tens of milliseconds (embeddings) to minutes (long completions).
_MS_BUCKETS = (5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 120_000)

# The GenAI semantic conventions' advised buckets.
_TOKEN_BUCKETS = tuple(4**n for n in range(1, 14))  # 4 ... 67,108,864
_SECONDS_BUCKETS = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)
# gen_ai.operation.name for each of the gateway's operations (the conventions' names where
# they have one).
_GEN_AI_OPERATIONS = {
    "chat": "chat",
    "responses": "chat",
    "completions": "text_completion",
    "embeddings": "embeddings",
}
# gen_ai.provider.name of each deployment, told by the gateway at start (the record names only
# the deployment): "azure.ai.openai", "openai" or "azure.ai.inference".
_providers: dict[str, str] = {}

# Either one makes the Functions worker call configure_azure_monitor itself (the setting's name
# depends on the worker generation).
_WORKER_SETTINGS = ("PYTHON_ENABLE_OPENTELEMETRY", "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY")


class _Instruments:
    def __init__(self, meter: metrics.Meter) -> None:
        self.requests = meter.create_counter(
            "tollgate.requests", unit="{request}", description="Requests answered."
        )
        self.duration = meter.create_histogram(
            "tollgate.request.duration",
            unit="ms",
            description="Until the last byte.",
            explicit_bucket_boundaries_advisory=_MS_BUCKETS,
        )
        self.ttfb = meter.create_histogram(
            "tollgate.time_to_first_byte",
            unit="ms",
            description="Until the first byte.",
            explicit_bucket_boundaries_advisory=_MS_BUCKETS,
        )
        self.tokens = meter.create_counter(
            "tollgate.tokens", unit="{token}", description="Tokens by kind."
        )
        self.cost = meter.create_counter(
            "tollgate.cost", description="Cost, in the price table's currency."
        )
        self.rejections = meter.create_counter(
            "tollgate.rejections", unit="{request}", description="4xx the gateway answered itself."
        )
        self.upstream_errors = meter.create_counter(
            "tollgate.upstream.errors", unit="{attempt}", description="Failed upstream attempts."
        )
        self.cache = meter.create_counter(
            "tollgate.cache.requests",
            unit="{request}",
            description="Requests the response cache applied to, by result.",
        )
        self.cache_saved = meter.create_counter(
            "tollgate.cache.saved", description="What hits saved, in the price table's currency."
        )
        self.content_blocks = meter.create_counter(
            "tollgate.content.blocks",
            unit="{finding}",
            description="Content policy findings that blocked a prompt or an answer.",
        )
        self.content_unavailable = meter.create_counter(
            "tollgate.content.unavailable",
            unit="{request}",
            description="Requests whose content checks Content Safety could not make.",
        )
        # The OpenTelemetry GenAI semantic conventions' names, units and buckets.
        self.gen_ai_tokens = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS,
        )
        self.gen_ai_duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=_SECONDS_BUCKETS,
        )
        self.gen_ai_first_token = meter.create_histogram(
            "gen_ai.server.time_to_first_token",
            unit="s",
            description="Time to generate first token for successful responses.",
            explicit_bucket_boundaries_advisory=_SECONDS_BUCKETS,
        )
        self.breaker_opened = meter.create_counter(
            "tollgate.breaker.opened",
            unit="{opening}",
            description="Times a deployment's circuit breaker opened.",
        )
        self.failovers = meter.create_counter(
            "tollgate.failovers", unit="{failover}", description="Moves to another deployment."
        )


# Created on the API's proxy meter unless a provider is already set; the proxy rebinds its
# instruments when a provider is set later, so import order does not matter.
_instruments = _Instruments(metrics.get_meter(METER_NAME))
_configured = False


def use_meter_provider(provider: metrics.MeterProvider | None) -> None:
    """Record into `provider` from now on (None: the global one). For tests, which cannot rely
    on the global provider: it can be set only once per process."""
    global _instruments
    meter = metrics.get_meter(METER_NAME, meter_provider=provider)
    _instruments = _Instruments(meter)


def record_request(record: UsageRecord) -> None:
    inst = _instruments
    model = "-" if record.error_code in _UNRESOLVED_MODEL_CODES else record.model
    attrs = {
        "system": record.system,
        "model": model,
        "deployment": record.deployment,
        "route": record.route,
        "operation": record.operation,
        "status_class": _status_class(record.status),
        "stream": "true" if record.stream else "false",
    }
    inst.requests.add(1, attrs)
    inst.duration.record(record.total_ms, attrs)
    if record.ttfb_ms > 0:
        inst.ttfb.record(record.ttfb_ms, attrs)
    if record.prompt_tokens > 0:
        inst.tokens.add(record.prompt_tokens, _token_attrs(record, model, "prompt"))
    if record.completion_tokens > 0:
        inst.tokens.add(record.completion_tokens, _token_attrs(record, model, "completion"))
    if record.cost > 0:
        inst.cost.add(record.cost, {"system": record.system, "model": model})
    if record.model != "-":
        _record_gen_ai(inst, record, model)
    if record.cache:
        inst.cache.add(1, {"result": record.cache, "system": record.system, "model": model})
        if record.saved_cost > 0:
            inst.cache_saved.add(record.saved_cost, {"system": record.system, "model": model})
    if record.content_checks or record.content_flags:
        _record_content(inst, record, model)
    if 400 <= record.status < 500 and record.error_code and not record.deployment:
        inst.rejections.add(
            1, {"reason": record.error_code, "system": record.system, "model": model}
        )


def set_providers(providers: dict[str, str]) -> None:
    """Each deployment's gen_ai.provider.name."""
    _providers.clear()
    _providers.update(providers)


def _record_gen_ai(inst: _Instruments, record: UsageRecord, model: str) -> None:
    """The GenAI conventions' metrics: a call that reached a deployment (or the cache)."""
    if not record.deployment and record.cache != "hit":
        return
    attrs = {
        "gen_ai.operation.name": _GEN_AI_OPERATIONS.get(record.operation, record.operation),
        "gen_ai.request.model": model,
        "gen_ai.provider.name": _providers.get(record.deployment, "openai")
        if record.deployment
        else "tollgate.cache",
        "tollgate.system": record.system,
    }
    failed = record.status >= 400 or bool(record.error_code)
    duration = {**attrs, "error.type": record.error_code or str(record.status)} if failed else attrs
    inst.gen_ai_duration.record(record.total_ms / 1000, duration)
    if failed:
        return
    if record.prompt_tokens:
        inst.gen_ai_tokens.record(record.prompt_tokens, {**attrs, "gen_ai.token.type": "input"})
    if record.completion_tokens:
        output = {**attrs, "gen_ai.token.type": "output"}
        inst.gen_ai_tokens.record(record.completion_tokens, output)
    if record.stream and record.ttfb_ms > 0:
        inst.gen_ai_first_token.record(record.ttfb_ms / 1000, attrs)


def _record_content(inst: _Instruments, record: UsageRecord, model: str) -> None:
    """Blocks by direction and kind (a category, jailbreak, blocklist, pattern); outages."""
    for part in record.content_flags.split(";") if record.content_flags else []:
        direction, _, flags = part.partition("=")
        for flag in flags.split(","):
            kind = flag.split(":", 1)[0]
            attrs = {"system": record.system, "model": model, "direction": direction}
            inst.content_blocks.add(1, {**attrs, "kind": kind})
    if "unavailable" in record.content_checks:
        inst.content_unavailable.add(1, {"system": record.system, "model": model})


def record_upstream_error(deployment: str, model: str, kind: UpstreamErrorKind) -> None:
    _instruments.upstream_errors.add(1, {"deployment": deployment, "model": model, "kind": kind})


def record_breaker_opened(deployment: str) -> None:
    _instruments.breaker_opened.add(1, {"deployment": deployment})


def record_failover(model: str, from_deployment: str, to_deployment: str) -> None:
    _instruments.failovers.add(
        1, {"model": model, "from_deployment": from_deployment, "to_deployment": to_deployment}
    )


def configure_telemetry(connection_string: str | None, prometheus: bool = False) -> None:
    """Export metrics and traces to Application Insights, and serve metrics as Prometheus text
    when asked (`/metrics`); once per process.

    Application Insights is left alone without a connection string, or when the Functions
    worker configures Azure Monitor itself (PYTHON_ENABLE_OPENTELEMETRY /
    PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY): configuring it twice would duplicate the
    telemetry. Never raises: the gateway serves without.
    """
    global _configured
    insights = bool(connection_string) and not worker_managed(os.environ)
    if _configured or not (insights or prometheus):
        return
    _configured = True
    readers = _prometheus_readers() if prometheus else []
    if not insights:
        from opentelemetry.sdk.metrics import MeterProvider

        metrics.set_meter_provider(MeterProvider(metric_readers=readers))
        return
    assert connection_string is not None
    # Python logs already reach Application Insights through the Functions host (and stdout
    # under uvicorn): exporting them too would duplicate every line. The distro has no argument
    # for this (it overwrites disable_logging); an operator's own OTEL_LOGS_EXPORTER wins.
    os.environ.setdefault("OTEL_LOGS_EXPORTER", "none")
    try:
        # A large import tree (about 0.4 to 1.3 s with configure): only paid when telemetry is on.
        from azure.monitor.opentelemetry import configure_azure_monitor

        options = azure_monitor_options(connection_string, os.environ)
        if readers:
            options["metric_readers"] = readers
        configure_azure_monitor(**options)
    except Exception:
        log.exception("Application Insights telemetry could not be configured; continuing without")


def _prometheus_readers() -> list[Any]:
    """The Prometheus reader: it registers the metrics with prometheus_client's registry, which
    `/metrics` renders."""
    try:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
    except ImportError:
        log.error("TOLLGATE_PROMETHEUS is on, but opentelemetry-exporter-prometheus is missing")
        return []
    return [PrometheusMetricReader()]


def worker_managed(environ: Mapping[str, str]) -> bool:
    return any(_true_like(environ.get(name, "")) for name in _WORKER_SETTINGS)


def azure_monitor_options(connection_string: str, environ: Mapping[str, str]) -> dict[str, Any]:
    options: dict[str, Any] = {"connection_string": connection_string}
    auth = _parse_auth(environ.get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING", ""))
    if auth.get("authorization") == "AAD":
        # Sync credential: the exporters run in their own threads. The exporter would build the
        # same one from the variable; passing it makes one credential serve every exporter.
        from azure.identity import ManagedIdentityCredential

        options["credential"] = ManagedIdentityCredential(client_id=auth.get("clientid"))
    return options


def _parse_auth(value: str) -> dict[str, str]:
    """`Authorization=AAD;ClientId=<guid>`: keys case-insensitive, as the exporter reads it."""
    pairs = (part.split("=", 1) for part in value.split(";") if "=" in part)
    return {key.strip().lower(): val.strip() for key, val in pairs}


def _true_like(value: str) -> bool:
    # As the Functions worker reads its boolean settings.
    return value.strip().lower() in {"1", "true", "t", "yes", "y"}


def _status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status <= 599 else "other"


def _token_attrs(record: UsageRecord, model: str, kind: str) -> dict[str, str]:
    return {"kind": kind, "system": record.system, "model": model, "deployment": record.deployment}
