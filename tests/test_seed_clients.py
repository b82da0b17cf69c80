"""The seed's own client code, unchanged but for the URL and key, against a live gateway."""

from __future__ import annotations

from typing import Any

import requests
from openai import AzureOpenAI

from tests.conftest import SEED_SYSTEM, SIM_KEY, Live


def test_seed_azure_openai_snippet(live: Live) -> None:
    client = AzureOpenAI(azure_endpoint=live.url, api_key=live.seed_key, api_version="2024-02-01")
    response = client.chat.completions.create(
        model="gpt-4o",  # model = "deployment_name".
        messages=[
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Does Azure OpenAI support customer managed keys?"},
            {
                "role": "assistant",
                "content": "Yes, customer managed keys are supported by Azure OpenAI.",
            },
            {"role": "user", "content": "Do other Azure AI services support this too?"},
        ],
    )
    assert "Do other Azure AI services support this too?" in str(
        response.choices[0].message.content
    )
    assert response.usage is not None and response.usage.total_tokens > 0


def test_seed_requests_snippet(live: Live) -> None:
    for model in ("gpt-35-turbo-16k", "gpt-4-turbo", "gpt-4o"):
        url = f"{live.url}/gateway/chat/completions/{model}"
        headers = {"api-key": live.seed_key, "systemId": SEED_SYSTEM}
        payload = {
            "messages": [
                {"role": "system", "content": "你是金融專家"},
                {
                    "role": "user",
                    "content": "電動車的普及及如何影響保險行業的風險評估和定價策略?請簡要說明。",
                },
            ]
        }
        response = requests.post(url, headers=headers, json=payload, timeout=30)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["object"] == "chat.completion"
        assert body["choices"][0]["message"]["content"].startswith("Echo: 電 動 車")
        assert response.headers["x-tollgate-upstream"] == f"sim-{model}"
        assert response.headers["x-request-id"].startswith("req_")


def test_upstream_sees_its_own_key_and_model_never_the_clients(live: Live) -> None:
    live.sim("DELETE", "requests")
    url = f"{live.url}/gateway/chat/completions/gpt-4o"
    payload: Any = {"messages": [{"role": "user", "content": "hi"}], "temperature": 0.25, "seed": 7}
    response = requests.post(url, headers={"api-key": live.seed_key}, json=payload, timeout=30)
    assert response.status_code == 200
    (seen,) = live.sim_requests()
    headers = {k.lower(): v for k, v in seen["headers"].items()}  # type: ignore[union-attr]
    assert headers["api-key"] == SIM_KEY
    assert live.seed_key not in str(seen)
    assert seen["path"] == "/openai/deployments/gpt-4o/chat/completions"
    body = seen["body"]
    assert body == {**payload, "model": "gpt-4o"}
