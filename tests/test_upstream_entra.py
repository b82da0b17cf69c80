"""Upstreams reached with the gateway's own identity instead of a key (`"auth": "entra"`): the
real aio ManagedIdentityCredential gets its token from the managed-identity stand-in, and the
simulator, as Azure OpenAI and Foundry would, takes it as a bearer token for the Cognitive
Services audience. No upstream key exists anywhere."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI

from shared.errors import ConfigError
from shared.upstream.config import parse_config
from tests.conftest import Live
from tests.support.keyvault_standin import KeyVaultStandIn
from tests.support.rig import gateway_rig

AUDIENCE = "https://cognitiveservices.azure.com"


def test_azure_and_foundry_upstreams_take_the_gateways_token(live: Live, tmp_path: Path) -> None:
    config = {
        "upstreams": {
            "aoai": {
                "type": "azure",
                "endpoint": live.simulator.url,
                "deployment": "gpt-4o",
                "auth": "entra",
            },
            "foundry": {
                "type": "foundry",
                "endpoint": f"{live.simulator.url}/models",
                "model": "Mistral-Large-2411",
                "auth": "entra",
            },
        },
        "models": {"aoai-chat": {"upstream": "aoai"}, "mistral": {"upstream": "foundry"}},
    }
    with KeyVaultStandIn().in_thread() as identity:
        settings = {
            "TOLLGATE_CONFIG_JSON": json.dumps(config),
            "TOLLGATE_SECRET_SIMULATOR_KEY": "",  # there is no upstream key to find
            **identity.credential_env(),
        }
        live.sim("POST", "config", {"entra_audience": AUDIENCE})
        live.sim("DELETE", "requests")
        try:
            with gateway_rig(tmp_path, settings, simulator=live.simulator) as rig:
                sdk = OpenAI(base_url=f"{rig.gateway.url}/v1", api_key=rig.key, max_retries=0)
                messages: Any = [{"role": "user", "content": "who am I?"}]
                answers = [
                    sdk.chat.completions.with_raw_response.create(model=model, messages=messages)
                    for model in ("aoai-chat", "mistral", "aoai-chat")
                ]
                logs = rig.gateway.log_text()
        finally:
            live.sim("POST", "config", {"entra_audience": ""})
        seen = live.sim_requests()
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert [s["path"] for s in seen] == [
        "/openai/deployments/gpt-4o/chat/completions",
        "/models/chat/completions",
        "/openai/deployments/gpt-4o/chat/completions",
    ]
    assert {s.get("auth") for s in seen} == {"entra"}
    tokens = {s["headers"]["authorization"].removeprefix("Bearer ") for s in seen}
    assert all("api-key" not in s["headers"] for s in seen)
    ((token,),) = (tokens,)  # one token, asked for once and reused
    resources = [r.get("resource") for r in identity.token_requests]
    assert resources == [AUDIENCE]
    assert token not in logs
    assert all(token not in json.dumps(dict(a.headers)) for a in answers)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"auth": "entra", "key_secret": "k"}, "exclude each other"),
        ({"auth": "entra", "scope": "cognitiveservices"}, "https:// scope"),
        ({"auth": "token"}, "'auth' must be one of key, entra"),
    ],
)
def test_entra_auth_is_configured_without_a_key(spec: dict[str, Any], message: str) -> None:
    upstream = {"type": "azure", "endpoint": "https://x.openai.azure.com", "deployment": "d"}
    with pytest.raises(ConfigError, match=message):
        parse_config({"upstreams": {"u": {**upstream, **spec}}, "models": {"m": {"upstream": "u"}}})
