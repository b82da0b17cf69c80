"""Legacy text completions and Azure AI Foundry model-inference deployments through the gateway
(issue #17, first part): the official SDK in each style, streamed and not, metered on the
upstream's usage, redacted, and a pool mixing a Foundry deployment with an Azure OpenAI one."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import requests
from openai import AzureOpenAI, OpenAI

from tests.conftest import SIM_KEY, Live, new_system
from tests.support.processes import tollgate
from tests.support.rig import gateway_rig

INSTRUCT = "gpt-35-turbo-instruct"
FRESH_REGISTRY = {"TOLLGATE_REGISTRY_REFRESH_SECONDS": "0.1"}


def openai_client(url: str, key: str, base: str = "/v1") -> OpenAI:
    return OpenAI(base_url=url + base, api_key=key, max_retries=0)


@pytest.mark.parametrize("style", ["openai", "azure", "azure-v1"])
def test_completions_through_each_sdk_style(live: Live, style: str) -> None:
    if style == "azure":
        sdk: OpenAI = AzureOpenAI(
            azure_endpoint=live.url, api_key=live.seed_key, api_version="2024-10-21", max_retries=0
        )
    else:
        sdk = openai_client(live.url, live.seed_key, "/openai/v1" if style == "azure-v1" else "/v1")
    live.sim("DELETE", "requests")
    done = sdk.completions.create(model=INSTRUCT, prompt="Say this is a test", max_tokens=7)
    assert done.object == "text_completion" and "Say this is a test" in done.choices[0].text
    assert done.usage is not None and done.usage.completion_tokens == 7
    assert done.choices[0].finish_reason == "length"
    pieces = list(sdk.completions.create(model=INSTRUCT, prompt="Say this is a test", stream=True))
    streamed = "".join(p.choices[0].text for p in pieces if p.choices)
    assert streamed.startswith(done.choices[0].text)
    assert all(p.usage is None for p in pieces)  # the usage the gateway asked for is hidden
    seen = live.sim_requests()
    assert {s["path"] for s in seen} == {f"/openai/deployments/{INSTRUCT}/completions"}
    assert seen[1]["body"]["stream_options"] == {"include_usage": True}


def test_completions_in_the_seeds_style(live: Live) -> None:
    answer = requests.post(
        f"{live.url}/gateway/completions/{INSTRUCT}",
        headers={"api-key": live.seed_key, "systemId": "0003R3"},
        json={"prompt": ["one", "two"], "max_tokens": 3},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert [c["index"] for c in answer.json()["choices"]] == [0, 1]


@pytest.mark.parametrize(
    ("path", "model", "body"),
    [
        ("/v1/completions", "gpt-4o", {"prompt": "x"}),  # a chat model
        ("/v1/chat/completions", INSTRUCT, {"messages": [{"role": "user", "content": "x"}]}),
    ],
)
def test_a_model_answers_only_its_own_operation(
    live: Live, path: str, model: str, body: dict[str, Any]
) -> None:
    live.sim("DELETE", "requests")
    answer = requests.post(
        live.url + path,
        headers={"Authorization": f"Bearer {live.seed_key}"},
        json={"model": model, **body},
        timeout=30,
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "operation_not_supported"
    assert live.sim_requests() == []


def test_completions_are_metered_and_redacted(tmp_path: Path, live: Live) -> None:
    with gateway_rig(tmp_path, FRESH_REGISTRY, simulator=live.simulator) as rig:
        env = {
            "TOLLGATE_REGISTRY": str(tmp_path / "systems.json"),
            "TOLLGATE_SIMULATOR_URL": live.simulator.url,
            "TOLLGATE_SECRET_SIMULATOR_KEY": SIM_KEY,
        }
        key = new_system(env, "legacy", limits={"tokens_per_day": 100_000})
        masked = tollgate("systems", "update", "legacy", "--redaction", "mask", env=env)
        assert masked.returncode == 0, masked.stderr
        sdk = openai_client(rig.gateway.url, key)
        live.sim("DELETE", "requests")
        done = sdk.completions.create(
            model=INSTRUCT, prompt=["ID A123456789 please", "call 0912-345-678"], n=2
        )
        (seen,) = live.sim_requests()
        record = rig.wait_for_record(lambda r: r["system"] == "legacy")
    sent = json.dumps(seen["body"])
    assert "A123456789" not in sent and "0912-345-678" not in sent and "[TW_ID]" in sent
    assert len(done.choices) == 4 and done.usage is not None
    assert (record["operation"], record["model"]) == ("completions", INSTRUCT)
    assert record["prompt_tokens"] == done.usage.prompt_tokens
    assert record["completion_tokens"] == done.usage.completion_tokens
    assert record["settled_tokens"] == done.usage.total_tokens
    # Reserved: the prompts' estimate and 16 tokens (the API's default) for each of 2 x 2.
    assert record["reserved_tokens"] >= done.usage.prompt_tokens + 16 * 4


@pytest.mark.parametrize("stream", [False, True])
def test_a_foundry_deployment_answers_chat(live: Live, stream: bool) -> None:
    sdk = openai_client(live.url, live.seed_key)
    live.sim("DELETE", "requests")
    messages: Any = [{"role": "user", "content": "hello Foundry"}]
    if stream:
        chunks = list(
            sdk.chat.completions.create(model="DeepSeek-R1", messages=messages, stream=True)
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        reply = sdk.chat.completions.create(model="DeepSeek-R1", messages=messages)
        text = reply.choices[0].message.content or ""
    assert "hello Foundry" in text
    (seen,) = live.sim_requests()
    assert seen["path"] == "/models/chat/completions"
    assert seen["query"]["api-version"] == "2024-05-01-preview"
    assert seen["body"]["model"] == "DeepSeek-R1" and seen["headers"]["api-key"] == SIM_KEY


def test_a_foundry_deployment_answers_embeddings(live: Live) -> None:
    sdk = openai_client(live.url, live.seed_key)
    live.sim("DELETE", "requests")
    vectors = sdk.embeddings.create(model="Cohere-embed-v3-multilingual", input=["a", "b"])
    assert len(vectors.data) == 2 and vectors.usage.prompt_tokens > 0
    (seen,) = live.sim_requests()
    assert seen["path"] == "/models/embeddings"


def test_a_pool_of_a_foundry_and_an_azure_deployment_fails_over(live: Live, tmp_path: Path) -> None:
    config = {
        "upstreams": {
            "foundry": {
                "type": "foundry",
                "endpoint": f"{live.simulator.url}/models",
                "model": "Llama-3.3-70B-Instruct",
                "key_secret": "simulator-key",
            },
            "aoai": {
                "type": "azure",
                "endpoint": live.simulator.url,
                "deployment": "gpt-4o",
                "key_secret": "simulator-key",
            },
        },
        "models": {
            "open-chat": {
                "upstreams": [
                    {"upstream": "foundry", "priority": 1},
                    {"upstream": "aoai", "priority": 2},
                ]
            }
        },
    }
    settings = {"TOLLGATE_CONFIG_JSON": json.dumps(config)}
    with gateway_rig(tmp_path, settings, simulator=live.simulator) as rig:
        sdk = openai_client(rig.gateway.url, rig.key)
        messages: Any = [{"role": "user", "content": "who answers?"}]
        first = sdk.chat.completions.with_raw_response.create(model="open-chat", messages=messages)
        assert first.headers["x-tollgate-upstream"] == "foundry"
        live.sim(
            "POST", "faults", {"status": 503, "count": 1, "deployment": "Llama-3.3-70B-Instruct"}
        )
        live.sim("DELETE", "requests")
        second = sdk.chat.completions.with_raw_response.create(model="open-chat", messages=messages)
        live.sim("DELETE", "faults")
        assert second.headers["x-tollgate-upstream"] == "aoai"
        assert "who answers?" in (second.parse().choices[0].message.content or "")
        paths = [s["path"] for s in live.sim_requests()]
        assert paths == ["/models/chat/completions", "/openai/deployments/gpt-4o/chat/completions"]
        # A chat model with a Foundry deployment in its pool does not answer the Responses API.
        refused = requests.post(
            f"{rig.gateway.url}/v1/responses",
            headers={"api-key": rig.key},
            json={"model": "open-chat", "input": "x"},
            timeout=30,
        )
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "operation_not_supported"


def test_the_model_list_says_what_each_model_answers(live: Live) -> None:
    listed = openai_client(live.url, live.seed_key).models.list()
    found: dict[str, Any] = {model.id: getattr(model, "capabilities", {}) for model in listed}
    assert found[INSTRUCT]["completion"] and not found[INSTRUCT]["chat_completion"]
    assert found["gpt-4o"]["chat_completion"] and found["gpt-4o"]["responses"]
    assert found["DeepSeek-R1"]["chat_completion"] and not found["DeepSeek-R1"]["responses"]
    assert found["text-embedding-3-small"]["embeddings"]


@pytest.mark.parametrize("style", ["openai", "azure"])
def test_images_are_generated_recorded_and_priced_per_image(
    live: Live, tmp_path: Path, style: str
) -> None:
    config = {
        "upstreams": {
            "painter": {
                "type": "azure",
                "endpoint": live.simulator.url,
                "deployment": "gpt-image-1",
                "key_secret": "simulator-key",
            }
        },
        "models": {
            "painter": {
                "upstream": "painter",
                "kind": "images",
                "price": {"per_image": 0.04, "prompt_per_million": 5, "completion_per_million": 40},
            }
        },
    }
    settings = {"TOLLGATE_CONFIG_JSON": json.dumps(config)}
    with gateway_rig(tmp_path, settings, simulator=live.simulator) as rig:
        if style == "azure":
            sdk: OpenAI = AzureOpenAI(
                azure_endpoint=rig.gateway.url, api_key=rig.key, api_version="2024-10-21"
            )
        else:
            sdk = openai_client(rig.gateway.url, rig.key)
        live.sim("DELETE", "requests")
        made = sdk.images.generate(model="painter", prompt="a toll gate at dawn", n=2)
        (seen,) = live.sim_requests()
        record = rig.wait_for_record(lambda r: r["operation"] == "images")
    assert made.data is not None and len(made.data) == 2
    image = base64.b64decode(made.data[0].b64_json or "")
    assert image.startswith(b"\x89PNG\r\n\x1a\n")
    assert seen["path"] == "/openai/deployments/gpt-image-1/images/generations"
    assert made.usage is not None and record["images"] == 2
    assert (record["prompt_tokens"], record["completion_tokens"]) == (
        made.usage.input_tokens,
        made.usage.output_tokens,
    )
    tokens_cost = (made.usage.input_tokens * 5 + made.usage.output_tokens * 40) / 1e6
    assert record["cost"] == pytest.approx(2 * 0.04 + tokens_cost)


def test_an_image_prompt_is_redacted_and_a_chat_model_draws_nothing(
    live: Live, tmp_path: Path
) -> None:
    with gateway_rig(tmp_path, FRESH_REGISTRY, simulator=live.simulator) as rig:
        env = {
            "TOLLGATE_REGISTRY": str(tmp_path / "systems.json"),
            "TOLLGATE_SIMULATOR_URL": live.simulator.url,
            "TOLLGATE_SECRET_SIMULATOR_KEY": SIM_KEY,
        }
        key = new_system(env, "artist")
        masked = tollgate("systems", "update", "artist", "--redaction", "mask", env=env)
        assert masked.returncode == 0, masked.stderr
        sdk = openai_client(rig.gateway.url, key)
        live.sim("DELETE", "requests")
        sdk.images.generate(model="dall-e-3", prompt="portrait of A123456789", n=1)
        (seen,) = live.sim_requests()
        refused = requests.post(
            f"{rig.gateway.url}/v1/images/generations",
            headers={"api-key": key},
            json={"model": "gpt-4o", "prompt": "x"},
            timeout=30,
        )
    assert "A123456789" not in json.dumps(seen["body"]) and "[TW_ID]" in seen["body"]["prompt"]
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "operation_not_supported"
