"""Upstream kinds and failures, through a second gateway with its own configuration."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from shared.errors import ConfigError
from shared.routes import Operation
from shared.upstream.config import parse_config
from tests.conftest import SIM_KEY, Live, new_system
from tests.support.processes import Service, free_port, start_gateway


@pytest.fixture(scope="module")
def custom(live: Live, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, str]]:
    work = tmp_path_factory.mktemp("custom")
    sim = live.simulator.url
    config = {
        "upstreams": {
            "openai-direct": {
                "type": "openai",
                "base_url": f"{sim}/v1",
                "model": "gpt-4o",
                "key_secret": "sim-openai",
            },
            "azure-old-api": {
                "type": "azure",
                "endpoint": sim,
                "deployment": "gpt-35-turbo",
                "api_version": "2024-06-01",
                "key_secret": "sim-azure",
            },
            "dead": {
                "type": "azure",
                "endpoint": f"http://127.0.0.1:{free_port()}",
                "deployment": "gpt-4o",
                "key_secret": "sim-azure",
            },
            "keyless": {
                "type": "azure",
                "endpoint": sim,
                "deployment": "gpt-4o",
                "key_secret": "never-configured",
            },
        },
        "models": {
            "corp-chat": {"upstream": "openai-direct"},
            "legacy": {"upstream": "azure-old-api"},
            "dead": {"upstream": "dead"},
            "keyless": {"upstream": "keyless"},
            "slow": {"upstream": "azure-old-api"},
        },
    }
    env = {
        "TOLLGATE_REGISTRY": str(work / "systems.json"),
        "TOLLGATE_CONFIG_JSON": json.dumps(config),
        "TOLLGATE_SECRET_SIM_OPENAI": SIM_KEY,
        "TOLLGATE_SECRET_SIM_AZURE": SIM_KEY,
        "TOLLGATE_UPSTREAM_READ_TIMEOUT": "1",
        "TOLLGATE_UPSTREAM_FIRST_BYTE_TIMEOUT": "1",  # the slow upstream below
    }
    key = new_system(env, "app")
    gateway = start_gateway(env, Path(work / "gateway.log"))
    try:
        yield gateway, key
    finally:
        gateway.stop()


def chat(gateway: Service, key: str, model: str) -> requests.Response:
    body: Any = {"model": model, "messages": [{"role": "user", "content": "hello"}]}
    return requests.post(
        f"{gateway.url}/v1/chat/completions", headers={"api-key": key}, json=body, timeout=30
    )


def test_openai_upstream_gets_bearer_auth_and_its_own_model_name(
    live: Live, custom: tuple[Service, str]
) -> None:
    live.sim("DELETE", "requests")
    response = chat(*custom, "corp-chat")
    assert response.status_code == 200, response.text
    (seen,) = live.sim_requests()
    assert seen["path"] == "/v1/chat/completions"
    assert seen["headers"]["authorization"] == f"Bearer {SIM_KEY}"  # type: ignore[index]
    assert "api-key" not in seen["headers"]  # type: ignore[operator]
    assert seen["body"]["model"] == "gpt-4o"  # type: ignore[index]
    assert response.headers["x-tollgate-upstream"] == "openai-direct"


def test_azure_upstream_gets_its_configured_api_version(
    live: Live, custom: tuple[Service, str]
) -> None:
    live.sim("DELETE", "requests")
    assert chat(*custom, "legacy").status_code == 200
    (seen,) = live.sim_requests()
    assert seen["path"] == "/openai/deployments/gpt-35-turbo/chat/completions"
    assert seen["query"] == {"api-version": "2024-06-01"}


def test_unreachable_upstream_is_a_502(custom: tuple[Service, str]) -> None:
    response = chat(*custom, "dead")
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_unreachable"


def test_missing_upstream_key_is_a_502_that_names_no_secret(custom: tuple[Service, str]) -> None:
    response = chat(*custom, "keyless")
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_key_unavailable"
    assert "never-configured" not in response.text


def test_slow_upstream_is_a_504(live: Live, custom: tuple[Service, str]) -> None:
    live.sim("POST", "faults", {"delay_ms": 3000, "count": 1})
    try:
        response = chat(*custom, "slow")
    finally:
        live.sim("DELETE", "faults")
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "upstream_timeout"


def test_upstream_refusing_the_key_twice_is_a_502(live: Live, custom: tuple[Service, str]) -> None:
    live.sim("POST", "config", {"api_keys": ["some-other-key"]})
    try:
        response = chat(*custom, "legacy")
    finally:
        live.sim("POST", "config", {"api_keys": [SIM_KEY]})
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_rejected"
    assert SIM_KEY not in response.text and "some-other-key" not in response.text


def test_bad_configuration_stops_the_gateway_at_start(tmp_path: Path) -> None:
    env = {
        "TOLLGATE_REGISTRY": str(tmp_path / "s.json"),
        "TOLLGATE_CONFIG_JSON": '{"upstreams": {}}',
    }
    with pytest.raises(RuntimeError, match="non-empty 'upstreams'"):
        start_gateway(env, tmp_path / "gateway.log")


AZURE = {"type": "azure", "endpoint": "https://aoai.example", "key_secret": "k"}


def test_responses_paths_and_the_operations_each_model_serves() -> None:
    config = parse_config(
        {
            "upstreams": {
                "v1": {**AZURE, "deployment": "gpt-4o"},
                "preview": {**AZURE, "deployment": "codex", "responses_api": "preview"},
                "openai": {"type": "openai", "model": "gpt-4o", "key_secret": "k"},
            },
            "models": {
                "gpt-4o": {"upstream": "v1"},
                "chat-only": {"upstream": "openai", "serves": ["chat"]},
                "codex": {"upstream": "preview", "kind": "responses"},
            },
        }
    )
    ups = config.upstreams
    assert ups["v1"].url(Operation.RESPONSES) == "https://aoai.example/openai/v1/responses"
    assert ups["preview"].url(Operation.RESPONSES) == (
        "https://aoai.example/openai/responses?api-version=2025-04-01-preview"
    )
    assert ups["openai"].url(Operation.RESPONSES) == "https://api.openai.com/v1/responses"
    assert set(config.served) == {
        ("gpt-4o", Operation.CHAT),
        ("gpt-4o", Operation.RESPONSES),
        ("chat-only", Operation.CHAT),
        ("codex", Operation.RESPONSES),
    }
    assert config.served[("gpt-4o", Operation.RESPONSES)].operation is Operation.RESPONSES
    for bad in ({"serves": ["embeddings"]}, {"kind": "responses", "serves": ["chat"]}):
        with pytest.raises(ConfigError, match="serves"):
            parse_config(
                {
                    "upstreams": {"v1": {**AZURE, "deployment": "d"}},
                    "models": {"m": {"upstream": "v1", **bad}},
                }
            )
    with pytest.raises(ConfigError, match="responses_api"):
        parse_config(
            {
                "upstreams": {"v1": {**AZURE, "deployment": "d", "responses_api": "v2"}},
                "models": {"m": {"upstream": "v1"}},
            }
        )


def _foundry(**extra: Any) -> dict[str, Any]:
    return {
        "type": "foundry",
        "endpoint": "https://ai.example.services.ai.azure.com/models",
        "model": "DeepSeek-R1",
        "key_secret": "foundry-key",
        **extra,
    }


def test_a_foundry_upstream_is_reached_on_the_model_inference_api() -> None:
    config = parse_config(
        {
            "upstreams": {
                "f": _foundry(),
                "u": _foundry(api_version="2025-01-01", stream_usage=True),
            },
            "models": {
                "deepseek": {"upstream": "f"},
                "embed": {"upstream": "u", "kind": "embeddings"},
            },
        }
    )
    upstream = config.upstreams["f"]
    assert upstream.url(Operation.CHAT) == (
        "https://ai.example.services.ai.azure.com/models/chat/completions"
        "?api-version=2024-05-01-preview"
    )
    assert (
        config.upstreams["u"]
        .url(Operation.EMBEDDINGS)
        .endswith("/models/embeddings?api-version=2025-01-01")
    )
    assert upstream.auth_headers("k") == {"api-key": "k"}
    assert not upstream.reports_stream_usage and config.upstreams["u"].reports_stream_usage
    assert config.models["deepseek"].serves == {Operation.CHAT}  # no Responses API there


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"upstream": "f", "kind": "responses"}, "cannot serve responses"),
        ({"upstream": "f", "kind": "completions"}, "cannot serve completions"),
        ({"upstream": "f", "serves": ["chat", "responses"]}, "cannot serve responses"),
    ],
)
def test_a_model_cannot_ask_a_foundry_upstream_for_what_it_lacks(
    model: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config({"upstreams": {"f": _foundry()}, "models": {"m": model}})


def test_a_foundry_upstream_needs_its_model() -> None:
    spec = _foundry()
    del spec["model"]
    with pytest.raises(ConfigError, match="'model' is required"):
        parse_config({"upstreams": {"f": spec}, "models": {"m": {"upstream": "f"}}})
