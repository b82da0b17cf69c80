"""`/metrics` (issue #21): Prometheus text from the OpenTelemetry exporter, with the GenAI
conventions' metrics of known traffic; only for the configured networks or the admin key; off
unless TOLLGATE_PROMETHEUS is on. No label holds a request id, a key id or a key."""

from __future__ import annotations

from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Live
from tests.support.rig import gateway_rig

ADMIN_KEY = "admin-key-0123456789abcdef"


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [
        (sample.name, dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def test_metrics_of_known_traffic_parse_as_prometheus_text(live: Live, tmp_path: Path) -> None:
    with gateway_rig(tmp_path, {"TOLLGATE_PROMETHEUS": "true"}, simulator=live.simulator) as rig:
        answers = [rig.chat(), rig.chat(stream=True)]
        assert all(a.status_code == 200 for a in answers)
        usage = answers[0].json()["usage"]
        page = requests.get(f"{rig.gateway.url}/metrics", timeout=10)
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/plain")
    found = samples(page.text)
    tokens = [
        (labels, value)
        for name, labels, value in found
        if name.startswith("gen_ai_client_token_usage") and name.endswith("_sum")
    ]
    inputs = [v for labels, v in tokens if labels["gen_ai_token_type"] == "input"]
    assert inputs and sum(inputs) == 2 * usage["prompt_tokens"]
    assert {labels["gen_ai_operation_name"] for labels, _ in tokens} == {"chat"}
    first = [n for n, _, _ in found if n.startswith("gen_ai_server_time_to_first_token")]
    duration = [n for n, _, _ in found if n.startswith("gen_ai_client_operation_duration")]
    assert first and duration
    requests_total = [v for n, labels, v in found if n.startswith("tollgate_requests")]
    assert sum(requests_total) >= 2
    ids = [a.headers["x-request-id"] for a in answers]
    for forbidden in (*ids, rig.key, rig.key.split("_")[1]):
        assert forbidden not in page.text


def test_metrics_are_for_the_configured_networks_or_the_admin_key(
    live: Live, tmp_path: Path
) -> None:
    settings = {
        "TOLLGATE_PROMETHEUS": "true",
        "TOLLGATE_METRICS_NETWORKS": "10.0.0.0/8",
        "TOLLGATE_ADMIN_KEY_SECRET": "admin-key",
        "TOLLGATE_SECRET_ADMIN_KEY": ADMIN_KEY,
    }
    with gateway_rig(tmp_path, settings, simulator=live.simulator) as rig:
        url = f"{rig.gateway.url}/metrics"
        refused = requests.get(url, timeout=10)
        with_gateway_key = requests.get(
            url, headers={"authorization": f"Bearer {rig.key}"}, timeout=10
        )
        admitted = requests.get(url, headers={"authorization": f"Bearer {ADMIN_KEY}"}, timeout=10)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "admin_only"
    assert with_gateway_key.status_code == 403
    assert admitted.status_code == 200 and samples(admitted.text)


def test_metrics_are_off_unless_asked_for(live: Live, tmp_path: Path) -> None:
    with gateway_rig(tmp_path, {}, simulator=live.simulator) as rig:
        answer = requests.get(f"{rig.gateway.url}/metrics", timeout=10)
    assert answer.status_code == 404
