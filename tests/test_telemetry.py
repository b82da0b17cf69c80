"""Gateway metrics (shared/usage/telemetry.py): exported points, attribute hygiene, and that
nothing is loaded or configured unless Application Insights is."""

import os
import subprocess
import sys
import textwrap
import types
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from shared.usage import telemetry
from shared.usage.record import UsageRecord

REPO = Path(__file__).resolve().parents[1]
CONNECTION = "InstrumentationKey=00000000-0000-0000-0000-000000000000"

OK = UsageRecord(
    time="2026-11-25T13:35:18.123Z",
    request_id="req-canary-7f3a",
    system="0003R3",
    key_id="key-canary-91bd",
    route="gateway",
    operation="chat",
    model="gpt-4o",
    deployment="eastus-gpt4o",
    status=200,
    error_code="",
    stream=True,
    prompt_tokens=120,
    completion_tokens=30,
    total_tokens=150,
    reserved_tokens=400,
    settled_tokens=150,
    cost=0.0009,
    ttfb_ms=180.5,
    total_ms=950.25,
    attempts=1,
    client_ip="203.0.113.77",
    client_disconnected=False,
)
REJECTED = replace(
    OK,
    deployment="",
    status=429,
    error_code="rate_limit_exceeded",
    stream=False,
    prompt_tokens=0,
    completion_tokens=0,
    total_tokens=0,
    cost=0.0,
    ttfb_ms=0.0,
    total_ms=1.5,
)
REQUEST_KEYS = {"system", "model", "deployment", "route", "operation", "status_class", "stream"}
GEN_AI_KEYS = {
    "gen_ai.operation.name",
    "gen_ai.request.model",
    "gen_ai.provider.name",
    "tollgate.system",
}


@pytest.fixture
def reader() -> Iterator[InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    telemetry.use_meter_provider(provider)
    yield reader
    telemetry.use_meter_provider(None)
    provider.shutdown()


def points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    """Metric name -> its data points (cumulative since the provider was made)."""
    data = reader.get_metrics_data()
    found: dict[str, list[Any]] = {}
    for rm in data.resource_metrics if data else []:
        for sm in rm.scope_metrics:
            assert sm.scope.name == "tollgate"
            for metric in sm.metrics:
                found.setdefault(metric.name, []).extend(metric.data.data_points)
    return found


def only(pts: dict[str, list[Any]], name: str) -> Any:
    assert len(pts[name]) == 1, pts[name]
    return pts[name][0]


def test_a_successful_request(reader: InMemoryMetricReader) -> None:
    telemetry.record_request(OK)
    telemetry.record_request(replace(OK, total_ms=1049.75, ttfb_ms=220.0))
    pts = points(reader)

    attrs = {
        "system": "0003R3",
        "model": "gpt-4o",
        "deployment": "eastus-gpt4o",
        "route": "gateway",
        "operation": "chat",
        "status_class": "2xx",
        "stream": "true",
    }
    requests = only(pts, "tollgate.requests")
    assert (requests.value, dict(requests.attributes)) == (2, attrs)
    duration = only(pts, "tollgate.request.duration")
    assert (duration.count, duration.sum) == (2, 2000.0)
    assert (duration.min, duration.max) == (950.25, 1049.75)
    assert dict(duration.attributes) == attrs
    ttfb = only(pts, "tollgate.time_to_first_byte")
    assert (ttfb.count, ttfb.sum) == (2, 400.5)

    tokens = {p.attributes["kind"]: p for p in pts["tollgate.tokens"]}
    assert {k: p.value for k, p in tokens.items()} == {"prompt": 240, "completion": 60}
    assert dict(tokens["prompt"].attributes) == {
        "kind": "prompt",
        "system": "0003R3",
        "model": "gpt-4o",
        "deployment": "eastus-gpt4o",
    }
    cost = only(pts, "tollgate.cost")
    assert cost.value == pytest.approx(0.0018)
    assert dict(cost.attributes) == {"system": "0003R3", "model": "gpt-4o"}
    assert "tollgate.rejections" not in pts


def test_a_rejection_by_the_gateway(reader: InMemoryMetricReader) -> None:
    telemetry.record_request(REJECTED)
    telemetry.record_request(
        replace(REJECTED, status=401, error_code="invalid_api_key", system="-", model="-")
    )
    pts = points(reader)

    reasons = {p.attributes["reason"]: p for p in pts["tollgate.rejections"]}
    assert set(reasons) == {"rate_limit_exceeded", "invalid_api_key"}
    assert reasons["rate_limit_exceeded"].value == 1
    assert dict(reasons["invalid_api_key"].attributes) == {
        "reason": "invalid_api_key",
        "system": "-",
        "model": "-",
    }
    assert {p.attributes["status_class"] for p in pts["tollgate.requests"]} == {"4xx"}
    assert {p.attributes["deployment"] for p in pts["tollgate.requests"]} == {""}
    # Nothing was sent upstream: no first byte from one, no tokens, no cost.
    for name in ("tollgate.time_to_first_byte", "tollgate.tokens", "tollgate.cost"):
        assert name not in pts


def test_an_upstream_4xx_is_not_a_rejection(reader: InMemoryMetricReader) -> None:
    telemetry.record_request(replace(OK, status=429, error_code="rate_limit_exceeded"))
    telemetry.record_request(replace(REJECTED, status=400, error_code=""))
    pts = points(reader)
    assert "tollgate.rejections" not in pts
    assert sum(p.value for p in pts["tollgate.requests"]) == 2


def test_status_classes(reader: InMemoryMetricReader) -> None:
    for status in (200, 404, 502, 504, 0):
        telemetry.record_request(replace(OK, status=status))
    classes = {p.attributes["status_class"]: p.value for p in points(reader)["tollgate.requests"]}
    assert classes == {"2xx": 1, "4xx": 1, "5xx": 2, "other": 1}


def test_an_unknown_model_name_is_not_an_attribute(reader: InMemoryMetricReader) -> None:
    for code in ("model_not_found", "invalid_model_name"):
        telemetry.record_request(
            replace(REJECTED, status=404, error_code=code, model="client-chose-this-1")
        )
    telemetry.record_request(replace(REJECTED, status=403, error_code="model_not_allowed"))
    pts = points(reader)
    models = {p.attributes["reason"]: p.attributes["model"] for p in pts["tollgate.rejections"]}
    assert models == {
        "model_not_found": "-",
        "invalid_model_name": "-",
        "model_not_allowed": "gpt-4o",
    }


def test_upstream_errors_and_failovers(reader: InMemoryMetricReader) -> None:
    telemetry.record_upstream_error("eastus-gpt4o", "gpt-4o", "429")
    telemetry.record_upstream_error("eastus-gpt4o", "gpt-4o", "429")
    telemetry.record_upstream_error("westus-gpt4o", "gpt-4o", "timeout")
    telemetry.record_failover("gpt-4o", "eastus-gpt4o", "westus-gpt4o")
    pts = points(reader)

    errors = {
        (p.attributes["deployment"], p.attributes["kind"]): p.value
        for p in pts["tollgate.upstream.errors"]
    }
    assert errors == {("eastus-gpt4o", "429"): 2, ("westus-gpt4o", "timeout"): 1}
    assert {frozenset(p.attributes) for p in pts["tollgate.upstream.errors"]} == {
        frozenset({"deployment", "model", "kind"})
    }
    failover = only(pts, "tollgate.failovers")
    assert failover.value == 1
    assert dict(failover.attributes) == {
        "model": "gpt-4o",
        "from_deployment": "eastus-gpt4o",
        "to_deployment": "westus-gpt4o",
    }


def test_attributes_hold_only_bounded_fields(reader: InMemoryMetricReader) -> None:
    """Canary: request id, key id and client address never become attributes; every metric
    keeps its small, fixed set of keys."""
    telemetry.record_request(OK)
    telemetry.record_request(REJECTED)
    pts = points(reader)

    expected_keys = {
        "tollgate.requests": REQUEST_KEYS,
        "tollgate.request.duration": REQUEST_KEYS,
        "tollgate.time_to_first_byte": REQUEST_KEYS,
        "tollgate.tokens": {"kind", "system", "model", "deployment"},
        "tollgate.cost": {"system", "model"},
        "tollgate.rejections": {"reason", "system", "model"},
        "gen_ai.client.operation.duration": GEN_AI_KEYS,
        "gen_ai.client.token.usage": {*GEN_AI_KEYS, "gen_ai.token.type"},
        "gen_ai.server.time_to_first_token": GEN_AI_KEYS,
    }
    assert set(pts) == set(expected_keys)
    bounded = {
        OK.system,
        OK.model,
        OK.deployment,
        OK.route,
        OK.operation,
        "",
        "2xx",
        "4xx",
        "true",
        "false",
        "prompt",
        "completion",
        REJECTED.error_code,
        "chat",
        "openai",
        "input",
        "output",
    }
    for name, metric_points in pts.items():
        for point in metric_points:
            assert set(point.attributes) == expected_keys[name], name
            assert set(point.attributes.values()) <= bounded, (name, point.attributes)
            for canary in (OK.request_id, OK.key_id, OK.client_ip, OK.time):
                assert canary not in str(point.attributes)


NO_PROVIDER_SCRIPT = textwrap.dedent(
    """
    import sys
    from dataclasses import replace
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from shared.usage import telemetry
    from tests.test_telemetry import OK, REJECTED

    telemetry.configure_telemetry(None)
    telemetry.configure_telemetry("")
    telemetry.record_request(OK)
    telemetry.record_request(REJECTED)
    telemetry.record_upstream_error("d", "m", "5xx")
    telemetry.record_failover("m", "a", "b")
    assert not [m for m in sys.modules if m.startswith("azure.monitor")]

    # A provider set afterwards (as configure_azure_monitor does) is picked up by the proxy.
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    telemetry.record_request(OK)
    names = sorted(m.name for rm in reader.get_metrics_data().resource_metrics
                   for sm in rm.scope_metrics for m in sm.metrics)
    print(",".join(names))
    """
)


def test_no_provider_no_azure_monitor_and_a_late_global_provider() -> None:
    done = subprocess.run(
        [sys.executable, "-c", NO_PROVIDER_SCRIPT],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().split(",") == sorted(
        [
            "gen_ai.client.operation.duration",
            "gen_ai.client.token.usage",
            "gen_ai.server.time_to_first_token",
            "tollgate.cost",
            "tollgate.request.duration",
            "tollgate.requests",
            "tollgate.time_to_first_byte",
            "tollgate.tokens",
        ]
    )


class FakeDistro:
    """Stands in for azure.monitor.opentelemetry, which would install global providers."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail = fail
        self.module = types.ModuleType("azure.monitor.opentelemetry")
        self.module.configure_azure_monitor = self.configure  # type: ignore[attr-defined]

    def configure(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)
        if self.fail:
            raise RuntimeError("offline")


@pytest.fixture
def distro(monkeypatch: pytest.MonkeyPatch) -> FakeDistro:
    fake = FakeDistro()
    monkeypatch.setitem(sys.modules, "azure.monitor.opentelemetry", fake.module)
    monkeypatch.setattr(telemetry, "_configured", False)
    for name in (
        "PYTHON_ENABLE_OPENTELEMETRY",
        "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY",
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
        "OTEL_LOGS_EXPORTER",
    ):
        monkeypatch.setenv(name, "")  # so that teardown also removes what the code under test set
        monkeypatch.delenv(name)
    return fake


def test_configure_once_per_process(distro: FakeDistro) -> None:
    telemetry.configure_telemetry(None)
    assert distro.calls == []
    telemetry.configure_telemetry(CONNECTION)
    telemetry.configure_telemetry(CONNECTION)
    assert distro.calls == [{"connection_string": CONNECTION}]
    # Logs reach Application Insights through the host already; the distro reads only this.
    assert os.environ["OTEL_LOGS_EXPORTER"] == "none"


def test_an_operator_can_keep_log_export(
    distro: FakeDistro, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_LOGS_EXPORTER", "azure_monitor")
    telemetry.configure_telemetry(CONNECTION)
    assert len(distro.calls) == 1
    assert os.environ["OTEL_LOGS_EXPORTER"] == "azure_monitor"


@pytest.mark.parametrize(
    "setting", ["PYTHON_ENABLE_OPENTELEMETRY", "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"]
)
def test_worker_managed_telemetry_is_not_configured_again(
    distro: FakeDistro, monkeypatch: pytest.MonkeyPatch, setting: str
) -> None:
    monkeypatch.setenv(setting, "true")
    telemetry.configure_telemetry(CONNECTION)
    assert distro.calls == []
    monkeypatch.setenv(setting, "false")
    telemetry.configure_telemetry(CONNECTION)
    assert len(distro.calls) == 1


def test_a_failing_configure_does_not_raise(
    distro: FakeDistro, caplog: pytest.LogCaptureFixture
) -> None:
    distro.fail = True
    telemetry.configure_telemetry(CONNECTION)
    assert len(distro.calls) == 1
    assert "could not be configured" in caplog.text


def test_entra_id_auth_passes_a_managed_identity_credential(
    distro: FakeDistro, monkeypatch: pytest.MonkeyPatch
) -> None:
    from azure.identity import ManagedIdentityCredential

    client_id = "11111111-2222-3333-4444-555555555555"
    monkeypatch.setenv(
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING", f"ClientId={client_id};Authorization=AAD"
    )
    telemetry.configure_telemetry(CONNECTION)
    (call,) = distro.calls
    assert call["connection_string"] == CONNECTION
    assert isinstance(call["credential"], ManagedIdentityCredential)


@pytest.mark.parametrize(
    ("auth", "credential", "client_id"),
    [
        ("", False, None),
        ("Authorization=AAD", True, None),
        ("authorization=AAD; clientid=abc", True, "abc"),
        ("Authorization=Key", False, None),
        ("garbage", False, None),
    ],
)
def test_auth_string_parsing(auth: str, credential: bool, client_id: str | None) -> None:
    env = {"APPLICATIONINSIGHTS_AUTHENTICATION_STRING": auth} if auth else {}
    options = telemetry.azure_monitor_options(CONNECTION, env)
    assert ("credential" in options) is credential
    assert telemetry._parse_auth(auth).get("clientid") == client_id


def test_content_blocks_outages_and_cache_results_are_counted(
    reader: InMemoryMetricReader,
) -> None:
    blocked = replace(
        OK,
        status=400,
        error_code="content_filter",
        content_checks="prompt=local,content_safety,prompt_shields",
        content_flags="prompt=violence:6,jailbreak",
    )
    cut = replace(
        OK,
        content_checks="prompt=local;answer=local,content_safety,unavailable",
        content_flags="answer=blocklist:codenames",
    )
    hit = replace(OK, cache="hit", saved_cost=0.25, cost=0.0)
    for record in (blocked, cut, hit):
        telemetry.record_request(record)
    pts = points(reader)
    blocks = {
        (p.attributes["direction"], p.attributes["kind"]): p.value
        for p in pts["tollgate.content.blocks"]
    }
    assert blocks == {
        ("prompt", "violence"): 1,
        ("prompt", "jailbreak"): 1,
        ("answer", "blocklist"): 1,
    }
    assert only(pts, "tollgate.content.unavailable").value == 1
    assert only(pts, "tollgate.cache.requests").attributes["result"] == "hit"
    assert only(pts, "tollgate.cache.saved").value == pytest.approx(0.25)
    labels = [dict(p.attributes) for name in pts for p in pts[name]]
    assert not any(
        "codenames" in str(v) or "req-canary" in str(v) for a in labels for v in a.values()
    )


def test_gen_ai_metrics_under_the_semantic_conventions(reader: InMemoryMetricReader) -> None:
    telemetry.set_providers({OK.deployment: "azure.ai.openai"})
    try:
        telemetry.record_request(OK)
        telemetry.record_request(replace(OK, status=502, error_code="upstream_error"))
        embedded = replace(OK, operation="embeddings", completion_tokens=0, stream=False)
        telemetry.record_request(embedded)
    finally:
        telemetry.set_providers({})
    pts = points(reader)
    tokens = {
        (p.attributes["gen_ai.operation.name"], p.attributes["gen_ai.token.type"]): p
        for p in pts["gen_ai.client.token.usage"]
    }
    assert set(tokens) == {("chat", "input"), ("chat", "output"), ("embeddings", "input")}
    assert tokens[("chat", "input")].sum == OK.prompt_tokens
    assert tokens[("chat", "output")].sum == OK.completion_tokens
    assert {p.attributes["gen_ai.provider.name"] for p in pts["gen_ai.client.token.usage"]} == {
        "azure.ai.openai"
    }
    durations = pts["gen_ai.client.operation.duration"]
    failed = [p for p in durations if "error.type" in p.attributes]
    assert len(failed) == 1 and failed[0].attributes["error.type"] == "upstream_error"
    assert sum(p.count for p in durations) == 3
    assert only(pts, "gen_ai.server.time_to_first_token").sum == pytest.approx(OK.ttfb_ms / 1000)


def test_a_breaker_opening_is_counted_by_deployment(reader: InMemoryMetricReader) -> None:
    telemetry.record_breaker_opened("eastus-gpt4o")
    telemetry.record_breaker_opened("eastus-gpt4o")
    point = only(points(reader), "tollgate.breaker.opened")
    assert point.value == 2 and dict(point.attributes) == {"deployment": "eastus-gpt4o"}
