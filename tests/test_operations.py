"""What an operator sees (issue #18): 429s that say what was used against what was asked and
carry the refusing limit as headers, an upstream 429 that reaches the SDK as a RateLimitError,
access lines with status, duration, error code and upstream in both log formats, and answers
that say what to do next."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
import requests

from tests.conftest import SIM_KEY, new_system
from tests.support.rig import Rig, gateway_rig

HELLO = {"messages": [{"role": "user", "content": "hello"}]}


@pytest.fixture(params=["json", "text"])
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    settings = {"TOLLGATE_LOG_FORMAT": request.param, "TOLLGATE_REGISTRY_REFRESH_SECONDS": "0.2"}
    with gateway_rig(tmp_path, settings) as made:
        yield made


def env_of(rig: Rig) -> dict[str, str]:
    return {
        "TOLLGATE_REGISTRY": str(rig.work / "systems.json"),
        "TOLLGATE_SIMULATOR_URL": rig.simulator.url,
        "TOLLGATE_SECRET_SIMULATOR_KEY": SIM_KEY,
    }


def known(rig: Rig, key: str) -> None:
    for _ in range(50):
        answer = requests.get(f"{rig.gateway.url}/v1/models", headers={"api-key": key}, timeout=5)
        if answer.status_code == 200:
            return
        time.sleep(0.1)
    raise AssertionError("the key never became known")


def access_lines(rig: Rig) -> list[str]:
    return [line for line in rig.gateway.log_text().splitlines() if "tollgate.access" in line]


def test_a_spent_quota_says_what_was_used_against_what_was_asked(rig: Rig) -> None:
    key = new_system(env_of(rig), "thrifty", limits={"tokens_per_day": 120})
    known(rig, key)
    url = f"{rig.gateway.url}/gateway/chat/completions/gpt-4o"
    first = requests.post(
        url, headers={"api-key": key}, json={**HELLO, "max_tokens": 40}, timeout=30
    )
    assert first.status_code == 200
    refused = requests.post(
        url, headers={"api-key": key}, json={**HELLO, "max_tokens": 100}, timeout=30
    )
    assert refused.status_code == 429
    error = refused.json()["error"]
    used = 120 - int(refused.headers["x-ratelimit-remaining-tokens-day"])
    assert used == first.json()["usage"]["total_tokens"]
    assert f"{used} of 120 tokens used" in error["message"]
    assert re.search(r"may need up to 1\d\d ", error["message"]), error["message"]
    assert re.search(r"renews in \d+h\d\dm", error["message"]), error["message"]
    assert refused.headers["x-ratelimit-limit-tokens-day"] == "120"
    assert refused.headers["x-ratelimit-reset-tokens-day"].endswith("s")


def test_an_rpm_refusal_carries_the_rate_limit_headers(rig: Rig) -> None:
    key = new_system(env_of(rig), "slow", limits={"rpm": 1})
    known(rig, key)  # a model list is no model call: it counts against no limit
    url = f"{rig.gateway.url}/gateway/chat/completions/gpt-4o"
    assert requests.post(url, headers={"api-key": key}, json=HELLO, timeout=30).status_code == 200
    refused = requests.post(url, headers={"api-key": key}, json=HELLO, timeout=30)
    assert refused.status_code == 429
    assert refused.headers["x-ratelimit-limit-requests"] == "1"
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert "Limit 1, Used 1, Requested 1" in refused.json()["error"]["message"]


def test_an_upstream_429_on_a_single_deployment_is_a_rate_limit_error(rig: Rig) -> None:
    rig.fault(status=429, retry_after=7, deployment="gpt-4o", count=1)
    client = openai.OpenAI(base_url=rig.gateway.url + "/v1", api_key=rig.key, max_retries=0)
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert limited.value.response.headers["retry-after"] == "7"
    lines = access_lines(rig)
    assert any("429" in line and "sim-gpt-4o" in line for line in lines), lines


def test_access_lines_carry_status_duration_error_code_and_upstream(rig: Rig) -> None:
    assert rig.chat().status_code == 200
    missing = requests.post(
        f"{rig.gateway.url}/gateway/chat/completions/no-such-model",
        headers={"api-key": rig.key},
        json=HELLO,
        timeout=30,
    )
    assert missing.status_code == 404
    requests.get(f"{rig.gateway.url}/v1/models", headers={"api-key": rig.key}, timeout=30)
    lines = access_lines(rig)
    assert len(lines) >= 3, lines
    for line in lines:
        assert "\x1b[" not in line  # no terminal colours in a log
    if lines[0].startswith("{"):
        entries = [json.loads(line) for line in lines]
        ok, bad, models = entries[0], entries[1], entries[2]
        assert (ok["status"], ok["upstream"], ok["error_code"]) == (200, "sim-gpt-4o", "")
        assert ok["duration_ms"] > 0 and ok["request_id"]
        assert (bad["status"], bad["error_code"]) == (404, "model_not_found")
        assert models["operation"] == "models"
    else:
        ok, bad = lines[0], lines[1]
        assert "status=200" in ok and "upstream=sim-gpt-4o" in ok
        assert re.search(r"duration_ms=\d", ok) and "request_id=req_" in ok
        assert "status=404" in bad and "error_code=model_not_found" in bad
        assert "operation=models" in lines[2]


def test_a_new_key_refused_says_keys_take_a_moment_and_routes_are_named(rig: Rig) -> None:
    refused = requests.get(
        f"{rig.gateway.url}/v1/models", headers={"api-key": "tg_unknownkey1_xyz"}, timeout=30
    )
    assert refused.status_code == 401
    assert "may not be known here yet" in refused.json()["error"]["message"]
    unknown = requests.get(f"{rig.gateway.url}/v2/chat", timeout=30)
    assert unknown.status_code == 404
    assert "/v1/chat/completions" in unknown.json()["error"]["message"]


def test_a_stream_carries_one_cache_control(rig: Rig) -> None:
    with requests.post(
        f"{rig.gateway.url}/gateway/chat/completions/gpt-4o",
        headers={"api-key": rig.key},
        json={**HELLO, "stream": True},
        stream=True,
        timeout=30,
    ) as streamed:
        raw = streamed.raw.headers.getlist("cache-control")
        assert streamed.status_code == 200
        assert len(raw) == 1, raw
