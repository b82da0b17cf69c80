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


def record_failover(model: str, from_deployment: str, to_deployment: str) -> None:
    _instruments.failovers.add(
        1, {"model": model, "from_deployment": from_deployment, "to_deployment": to_deployment}
    )


def configure_telemetry(connection_string: str | None) -> None:
    """Export metrics and traces to Application Insights, once per process.

    Does nothing without a connection string, or when the Functions worker configures Azure
    Monitor itself (PYTHON_ENABLE_OPENTELEMETRY / PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY):
    configuring it twice would duplicate the telemetry. Never raises: the gateway serves without.
    """
    global _configured
    if _configured or not connection_string or worker_managed(os.environ):
        return
    _configured = True
    # Python logs already reach Application Insights through the Functions host (and stdout
    # under uvicorn): exporting them too would duplicate every line. The distro has no argument
    # for this (it overwrites disable_logging); an operator's own OTEL_LOGS_EXPORTER wins.
    os.environ.setdefault("OTEL_LOGS_EXPORTER", "none")
    try:
        # A large import tree (about 0.4 to 1.3 s with configure): only paid when telemetry is on.
        from azure.monitor.opentelemetry import configure_azure_monitor

        configure_azure_monitor(**azure_monitor_options(connection_string, os.environ))
    except Exception:
        log.exception("Application Insights telemetry could not be configured; continuing without")


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
