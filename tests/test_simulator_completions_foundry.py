"""The simulator's legacy completions (`/v1/completions`, Azure's deployments and v1) and Azure AI
Foundry's model-inference API (`/models/chat/completions`, `/models/embeddings`), over real HTTP
on 127.0.0.1, driven by the official openai SDK and, for errors and headers, by aiohttp."""

from __future__ import annotations

import json
import uuid
from typing import Any

import aiohttp
import openai
import pytest
from openai.lib.azure import AsyncAzureOpenAI
from openai.types import Completion
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam

from tests.support.sim_control import KEY, SimControl, simulator_fixtures

API_VERSION = "2024-10-21"
FOUNDRY_VERSION = "2024-05-01-preview"
AUTH = {"Authorization": f"Bearer {KEY}"}
USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello there"}]
# What every simulated answer to "hello there" says, 16 tokens long (the default length).
HELLO_16 = (
    "Echo: hello there lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod "
    "tempor incididunt"
)
ORIGINAL_MODELS = {
    "gpt-4o",
    "gpt-4-turbo",
    "gpt-35-turbo",
    "gpt-35-turbo-16k",
    "gpt-35-turbo-0613",
    "text-embedding-3-small",
    "text-embedding-ada-002",
}
COMPLETION_MODELS = {
    "gpt-35-turbo-instruct",
    "gpt-3.5-turbo-instruct",
    "davinci-002",
    "babbage-002",
}
FOUNDRY_MODELS = {
    "DeepSeek-R1",
    "Llama-3.3-70B-Instruct",
    "Mistral-Large-2411",
    "Cohere-embed-v3-multilingual",
}
RESOURCE_NOT_FOUND = {"error": {"code": "404", "message": "Resource not found"}}
STREAM_LIMIT = 200  # frames: far more than any stream here sends


class Sim(SimControl):
    def client(self, prefix: str = "/v1", **kwargs: Any) -> openai.AsyncOpenAI:
        kwargs.setdefault("api_key", KEY)
        return openai.AsyncOpenAI(base_url=self.url + prefix, max_retries=0, timeout=10, **kwargs)

    def azure(self) -> AsyncAzureOpenAI:
        return AsyncAzureOpenAI(
            azure_endpoint=self.url, api_version=API_VERSION, api_key=KEY, max_retries=0, timeout=10
        )

    def foundry(self) -> openai.AsyncOpenAI:
        return self.client("/models", default_query={"api-version": FOUNDRY_VERSION})

    async def post(
        self, path: str, body: Any, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        sent = AUTH if headers is None else headers
        async with self.http.post(self.url + path, json=body, headers=sent) as resp:
            return resp.status, await resp.json()

    async def sse(self, path: str, body: Any) -> list[str]:
        """The data of each event of a streamed answer."""
        async with self.http.post(self.url + path, json=body, headers=AUTH) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/event-stream")
            raw = (await resp.read()).decode()
        frames = raw.split("\n\n")
        assert frames[-1] == "" and len(frames) <= STREAM_LIMIT
        assert all(f.startswith("data: ") for f in frames[:-1])
        return [f.removeprefix("data: ") for f in frames[:-1]]


sim_server, sim = simulator_fixtures(Sim)


async def completions(stream: Any) -> list[Completion]:
    chunks: list[Completion] = []
    async for chunk in stream:
        chunks.append(chunk)
        assert len(chunks) <= STREAM_LIMIT
    return chunks


async def chat_chunks(stream: Any) -> list[ChatCompletionChunk]:
    chunks: list[ChatCompletionChunk] = []
    async for chunk in stream:
        chunks.append(chunk)
        assert len(chunks) <= STREAM_LIMIT
    return chunks


def texts_by_index(chunks: list[Completion]) -> dict[int, str]:
    texts: dict[int, str] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + choice.text
    return texts


# Legacy completions


async def test_completion_wire_shape_and_hand_counted_usage(sim: Sim) -> None:
    raw = await sim.client().completions.with_raw_response.create(
        model="gpt-3.5-turbo-instruct", prompt="hello there"
    )
    wire = json.loads(raw.text)
    assert set(wire) == {"id", "object", "created", "model", "choices", "usage"}
    assert wire["id"].startswith("cmpl-") and wire["object"] == "text_completion"
    assert wire["model"] == "gpt-3.5-turbo-instruct"
    assert wire["choices"] == [
        {"text": HELLO_16, "index": 0, "logprobs": None, "finish_reason": "stop"}
    ]
    # "hello there" is 2 tokens; the answer is the default 16.
    assert wire["usage"] == {"prompt_tokens": 2, "completion_tokens": 16, "total_tokens": 18}
    completion = raw.parse()
    assert completion.choices[0].text == HELLO_16
    assert raw.headers["x-request-id"].startswith("req_")


async def test_max_tokens_defaults_to_16_as_openai(sim: Sim) -> None:
    await sim.set_config(completion_tokens=40)
    client = sim.client()
    default = await client.completions.create(model="davinci-002", prompt="hello there")
    assert default.choices[0].text == HELLO_16
    assert default.choices[0].finish_reason == "length"
    assert default.usage is not None and default.usage.completion_tokens == 16
    longer = await client.completions.create(
        model="davinci-002", prompt="hello there", max_tokens=40
    )
    assert len(longer.choices[0].text.split()) == 40
    assert longer.choices[0].finish_reason == "stop"
    short = await client.completions.create(model="babbage-002", prompt="hello there", max_tokens=3)
    assert short.choices[0].text == "Echo: hello there"
    assert short.choices[0].finish_reason == "length"


async def test_prompt_list_times_n_choices_prompt_major(sim: Sim) -> None:
    completion = await sim.client().completions.create(
        model="gpt-3.5-turbo-instruct", prompt=["a b", "c"], n=2, max_tokens=3
    )
    assert [(c.index, c.text) for c in completion.choices] == [
        (0, "Echo: a b"),
        (1, "Echo: a b"),
        (2, "Echo: c lorem"),
        (3, "Echo: c lorem"),
    ]
    assert {c.finish_reason for c in completion.choices} == {"length"}
    assert completion.usage is not None
    # Prompts count once each (2 + 1), not once per choice; 4 choices of 3 tokens.
    assert completion.usage.model_dump(exclude_none=True) == {
        "prompt_tokens": 3,
        "completion_tokens": 12,
        "total_tokens": 15,
    }


async def test_token_id_prompts_count_one_token_per_id(sim: Sim) -> None:
    client = sim.client()
    one = await client.completions.create(
        model="gpt-3.5-turbo-instruct", prompt=[15339, 1070, 7], max_tokens=4
    )
    assert one.choices[0].text == "Echo: 15339 1070 7"
    assert one.usage is not None and one.usage.prompt_tokens == 3
    batch = await client.completions.create(
        model="gpt-3.5-turbo-instruct", prompt=[[1, 2], [3]], max_tokens=2
    )
    assert [c.text for c in batch.choices] == ["Echo: 1", "Echo: 3"]
    assert batch.usage is not None
    assert (batch.usage.prompt_tokens, batch.usage.completion_tokens) == (3, 4)


async def test_stream_equals_non_stream_with_usage_chunk(sim: Sim) -> None:
    client = sim.client()
    kwargs: dict[str, Any] = {"model": "gpt-3.5-turbo-instruct", "prompt": ["hello there", "x y"]}
    full = await client.completions.create(**kwargs, n=2)
    chunks = await completions(
        await client.completions.create(
            **kwargs, n=2, stream=True, stream_options={"include_usage": True}
        )
    )
    assert texts_by_index(chunks) == {c.index: c.text for c in full.choices}
    assert all(c.object == "text_completion" and c.id == chunks[0].id for c in chunks)
    # 16 tokens for each of 4 choices, one finish chunk each, then the usage chunk.
    assert len(chunks) == 16 * 4 + 4 + 1
    finishes = chunks[-5:-1]
    assert [(c.choices[0].index, c.choices[0].finish_reason) for c in finishes] == [
        (i, "stop") for i in range(4)
    ]
    assert all(c.choices[0].text == "" for c in finishes)
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None and full.usage is not None
    assert last.usage.model_dump() == full.usage.model_dump()
    # Prompts "hello there" and "x y": 2 + 2 tokens; 4 choices of 16.
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (4, 64)
    assert all(c.usage is None for c in chunks[:-1])
    assert all(c.choices[0].finish_reason is None for c in chunks[: 16 * 4])


async def test_stream_without_include_usage_has_no_usage_chunk(sim: Sim) -> None:
    stream = await sim.client().completions.create(
        model="davinci-002", prompt="hello there", max_tokens=5, stream=True
    )
    chunks = await completions(stream)
    assert len(chunks) == 5 + 1
    assert texts_by_index(chunks) == {0: "Echo: hello there lorem ipsum"}
    assert chunks[-1].choices[0].finish_reason == "length"
    assert all(c.usage is None for c in chunks)


async def test_raw_stream_frames(sim: Sim) -> None:
    body = {
        "model": "gpt-3.5-turbo-instruct",
        "prompt": "hi",
        "max_tokens": 2,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    payloads = await sim.sse("/v1/completions", body)
    assert payloads[-1] == "[DONE]"
    first, second, finish, usage = (json.loads(p) for p in payloads[:-1])
    head = {k: first[k] for k in ("id", "object", "created", "model")}
    assert head["object"] == "text_completion" and head["model"] == "gpt-3.5-turbo-instruct"
    assert first == {
        **head,
        "choices": [{"text": "Echo:", "index": 0, "logprobs": None, "finish_reason": None}],
        "usage": None,
    }
    assert second["choices"][0]["text"] == " hi"
    assert finish["choices"] == [
        {"text": "", "index": 0, "logprobs": None, "finish_reason": "length"}
    ]
    assert usage == {
        **head,
        "choices": [],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
    }
    plain = await sim.sse("/v1/completions", {**body, "stream_options": None})
    assert "usage" not in json.loads(plain[0]) and len(plain) == 2 + 1 + 1


async def test_azure_deployment_completions(sim: Sim) -> None:
    raw = await sim.azure().completions.with_raw_response.create(
        model="gpt-35-turbo-instruct", prompt="hello there"
    )
    completion = raw.parse()
    assert completion.model == "gpt-35-turbo-instruct"
    assert completion.choices[0].text == HELLO_16
    assert completion.usage is not None and completion.usage.total_tokens == 18
    filters = (completion.model_extra or {})["prompt_filter_results"]
    assert [f["prompt_index"] for f in filters] == [0]
    assert "content_filter_results" in (completion.choices[0].model_extra or {})
    assert raw.headers["apim-request-id"] == raw.headers["x-request-id"]
    (record,) = await sim.requests()
    assert record["path"] == "/openai/deployments/gpt-35-turbo-instruct/completions"
    assert record["query"] == {"api-version": API_VERSION}
    assert record["headers"]["api-key"] == KEY
    assert (record["operation"], record["status"], record["stream"]) == ("completions", 200, False)


async def test_azure_stream_opens_with_prompt_annotations(sim: Sim) -> None:
    client = sim.azure()
    full = await client.completions.create(model="gpt-35-turbo-instruct", prompt="hello there")
    chunks = await completions(
        await client.completions.create(
            model="gpt-35-turbo-instruct",
            prompt="hello there",
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    first = chunks[0]
    assert first.id == "" and first.choices == []
    assert "prompt_filter_results" in (first.model_extra or {})
    assert texts_by_index(chunks[1:]) == {0: full.choices[0].text}
    assert chunks[-1].usage is not None and full.usage is not None
    assert chunks[-1].usage.model_dump() == full.usage.model_dump()
    record = (await sim.requests())[-1]
    assert record["stream"] is True and record["chunks_sent"] == 1 + 16 + 1 + 1 + 1


async def test_azure_v1_completions_take_bearer_or_api_key(sim: Sim) -> None:
    completion = await sim.client("/openai/v1").completions.create(
        model="gpt-35-turbo-instruct", prompt="hello there", max_tokens=2
    )
    assert completion.choices[0].text == "Echo: hello"
    body = {"model": "gpt-35-turbo-instruct", "prompt": "hello there", "max_tokens": 2}
    status, answer = await sim.post("/openai/v1/completions", body, {"api-key": KEY})
    assert status == 200 and answer["choices"][0]["text"] == "Echo: hello"
    # OpenAI's own path does not read api-key.
    status, answer = await sim.post("/v1/completions", body, {"api-key": KEY})
    assert status == 401


async def test_wrong_operation_errors_match_chat_on_embeddings(sim: Sim) -> None:
    # The OpenAI-shaped error a chat model gets on embeddings, for reference.
    status, on_embeddings = await sim.post("/v1/embeddings", {"model": "gpt-4o", "input": "x"})
    assert status == 400 and on_embeddings["error"]["code"] == "model_not_supported"
    status, on_completions = await sim.post("/v1/completions", {"model": "gpt-4o", "prompt": "x"})
    assert status == 400
    assert on_completions["error"]["code"] == on_embeddings["error"]["code"]
    assert on_completions["error"]["type"] == on_embeddings["error"]["type"]
    chat = {"model": "davinci-002", "messages": USER}
    status, on_chat = await sim.post("/v1/chat/completions", chat)
    assert (status, on_chat["error"]["code"]) == (400, "model_not_supported")

    with pytest.raises(openai.BadRequestError) as azure_caught:
        await sim.azure().completions.create(model="gpt-35-turbo", prompt="x")
    assert azure_caught.value.code == "OperationNotSupported"
    assert "The completion operation does not work" in azure_caught.value.message
    with pytest.raises(openai.BadRequestError) as chat_caught:
        await sim.azure().chat.completions.create(model="gpt-35-turbo-instruct", messages=USER)
    assert chat_caught.value.code == "OperationNotSupported"
    assert "The chatCompletion operation does not work" in chat_caught.value.message


async def test_unknown_completions_model_is_404(sim: Sim) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        await sim.client().completions.create(model="text-davinci-003", prompt="x")
    assert caught.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError) as azure_caught:
        await sim.azure().completions.create(model="no-such-deployment", prompt="x")
    assert azure_caught.value.code == "DeploymentNotFound"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"prompt": None},
        {"prompt": 5},
        {"prompt": []},
        {"prompt": ["a", [1]]},
        {"prompt": [[1], []]},
        {"prompt": [True]},
        {"prompt": "x", "n": 0},
        {"prompt": "x", "max_tokens": -1},
        {"prompt": "x", "stream_options": {"include_usage": True}},
    ],
    ids=str,
)
async def test_bad_completions_bodies_are_400(sim: Sim, body: dict[str, Any]) -> None:
    status, answer = await sim.post("/v1/completions", {"model": "davinci-002", **body})
    assert status == 400
    assert answer["error"]["type"] == "invalid_request_error"
    (record,) = await sim.requests()
    assert record["status"] == 400


async def test_completions_faults_and_pacing(sim: Sim) -> None:
    await sim.fault(status=429, retry_after=3, deployment="gpt-35-turbo-instruct")
    with pytest.raises(openai.RateLimitError) as caught:
        await sim.azure().completions.create(model="gpt-35-turbo-instruct", prompt="x")
    assert caught.value.code == "429"
    assert "Completions_Create" in caught.value.message
    assert caught.value.response.headers["retry-after"] == "3"

    await sim.fault(reset_after_chunks=2)
    body = {"model": "davinci-002", "prompt": "hello there", "stream": True}
    async with sim.http.post(sim.url + "/v1/completions", json=body, headers=AUTH) as resp:
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()
    record = (await sim.requests())[-1]
    assert record["reset"] is True and record["chunks_sent"] == 2

    await sim.set_config(tokens_per_second=20, completion_tokens=8)
    async with sim.http.post(sim.url + "/v1/completions", json=body, headers=AUTH) as resp:
        first = await resp.content.readuntil(b"\n\n")
        sent_when_first_arrived = (await sim.requests())[-1]["chunks_sent"]
        await resp.read()
    assert b'"text":"Echo:"' in first
    assert sent_when_first_arrived < 8 + 1 + 1
    assert (await sim.requests())[-1]["chunks_sent"] == 8 + 1 + 1


# Azure AI Foundry's model-inference API


async def test_foundry_chat_names_the_bodys_model(sim: Sim) -> None:
    raw = await sim.foundry().chat.completions.with_raw_response.create(
        model="DeepSeek-R1", messages=USER
    )
    completion = raw.parse()
    assert completion.model == "DeepSeek-R1"
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content == HELLO_16
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    # 3 (reply primer) + 3 (message) + "user" + "hello there"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (9, 16)
    uuid.UUID(raw.headers["x-request-id"])
    assert raw.headers["apim-request-id"] == raw.headers["x-request-id"]
    (record,) = await sim.requests()
    assert record["path"] == "/models/chat/completions"
    assert record["query"] == {"api-version": FOUNDRY_VERSION}
    assert record["headers"]["authorization"] == f"Bearer {KEY}"
    assert (record["operation"], record["status"]) == ("chat", 200)
    # An Azure OpenAI model through Foundry keeps its name too (OpenAI would name a snapshot).
    gpt = await sim.foundry().chat.completions.create(model="gpt-4o", messages=USER)
    assert gpt.model == "gpt-4o"


async def test_foundry_chat_stream_with_usage(sim: Sim) -> None:
    client = sim.foundry()
    full = await client.chat.completions.create(model="Llama-3.3-70B-Instruct", messages=USER)
    chunks = await chat_chunks(
        await client.chat.completions.create(
            model="Llama-3.3-70B-Instruct",
            messages=USER,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.model == "Llama-3.3-70B-Instruct" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == full.choices[0].message.content == HELLO_16
    assert chunks[-2].choices[0].finish_reason == "stop"
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None and full.usage is not None
    assert last.usage.model_dump() == full.usage.model_dump()
    assert all(c.usage is None for c in chunks[:-1])
    record = (await sim.requests())[-1]
    assert (record["path"], record["stream"]) == ("/models/chat/completions", True)


async def test_foundry_embeddings(sim: Sim) -> None:
    result = await sim.foundry().embeddings.create(
        model="Cohere-embed-v3-multilingual", input=["alpha", "beta gamma"]
    )
    assert result.model == "Cohere-embed-v3-multilingual"
    assert [len(item.embedding) for item in result.data] == [1024, 1024]
    assert result.usage.prompt_tokens == 3 and result.usage.total_tokens == 3
    (record,) = await sim.requests()
    assert (record["path"], record["operation"]) == ("/models/embeddings", "embeddings")
    assert record["query"] == {"api-version": FOUNDRY_VERSION}


async def test_foundry_takes_api_key_or_bearer_and_refuses_others(sim: Sim) -> None:
    path = f"/models/chat/completions?api-version={FOUNDRY_VERSION}"
    body = {"model": "Mistral-Large-2411", "messages": USER, "max_tokens": 2}
    status, answer = await sim.post(path, body, {"api-key": KEY})
    assert status == 200 and answer["choices"][0]["message"]["content"] == "Echo: hello"
    assert answer["model"] == "Mistral-Large-2411"
    status, _ = await sim.post(path, body, AUTH)
    assert status == 200
    for headers in ({"api-key": "wrong"}, {"Authorization": "Bearer wrong"}, {}):
        status, answer = await sim.post(path, body, headers)
        assert status == 401 and answer["error"]["code"] == "401"
    records = await sim.requests()
    assert [r["status"] for r in records] == [200, 200, 401, 401, 401]


async def test_foundry_needs_a_version_it_serves(sim: Sim) -> None:
    body = {"model": "DeepSeek-R1", "messages": USER}
    for query in ("", "?api-version=2024-10-21", "?api-version=nonsense"):
        status, answer = await sim.post("/models/chat/completions" + query, body)
        assert (status, answer) == (404, RESOURCE_NOT_FOUND), query
    status, answer = await sim.post("/models/embeddings", {"model": "x", "input": "y"})
    assert (status, answer) == (404, RESOURCE_NOT_FOUND)
    status, _ = await sim.post(
        "/models/chat/completions?api-version=2025-04-01-preview", {**body, "max_tokens": 1}
    )
    assert status == 200


async def test_foundry_model_errors(sim: Sim) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        await sim.foundry().chat.completions.create(model="Phi-9", messages=USER)
    assert caught.value.code == "unknown_model"
    assert caught.value.body == {
        "code": "unknown_model",
        "message": "Unknown model: Phi-9",
        "details": "Unknown model: Phi-9",
    }
    path = f"/models/chat/completions?api-version={FOUNDRY_VERSION}"
    status, answer = await sim.post(path, {"messages": USER})
    assert status == 400 and answer["error"]["code"] == "no_model_name"
    # Foundry also takes the model from a header.
    headers = {**AUTH, "x-ms-model-mesh-model-name": "DeepSeek-R1"}
    status, answer = await sim.post(path, {"messages": USER, "max_tokens": 1}, headers)
    assert (status, answer["model"]) == (200, "DeepSeek-R1")
    status, answer = await sim.post(
        path, {"model": "Cohere-embed-v3-multilingual", "messages": USER}
    )
    assert (status, answer["error"]["code"]) == (400, "OperationNotSupported")
    embeddings = f"/models/embeddings?api-version={FOUNDRY_VERSION}"
    status, answer = await sim.post(embeddings, {"model": "DeepSeek-R1", "input": "x"})
    assert (status, answer["error"]["code"]) == (400, "OperationNotSupported")
    status, answer = await sim.post(f"/models/info?api-version={FOUNDRY_VERSION}", {})
    assert (status, answer) == (404, RESOURCE_NOT_FOUND)


async def test_foundry_faults_use_azure_shapes(sim: Sim) -> None:
    await sim.fault(status=429, retry_after_ms=5, deployment="DeepSeek-R1")
    with pytest.raises(openai.RateLimitError) as caught:
        await sim.foundry().chat.completions.create(model="DeepSeek-R1", messages=USER)
    assert caught.value.code == "429"
    assert caught.value.response.headers["retry-after-ms"] == "5"
    record = (await sim.requests())[-1]
    assert (record["path"], record["status"]) == ("/models/chat/completions", 429)


# The model lists


async def test_model_lists_add_the_new_models(sim: Sim) -> None:
    listed = {m.id for m in (await sim.client().models.list()).data}
    images = {"dall-e-2", "dall-e-3", "gpt-image-1"}
    audio = {"whisper-1", "tts-1"}
    assert listed == ORIGINAL_MODELS | COMPLETION_MODELS | FOUNDRY_MODELS | images | audio
    azure = {m.id: m.model_extra or {} for m in (await sim.azure().models.list()).data}
    assert set(azure) == listed
    capabilities = {
        name: {k for k, v in extra["capabilities"].items() if v is True and k != "inference"}
        for name, extra in azure.items()
    }
    assert capabilities["davinci-002"] == {"completion"}
    assert capabilities["DeepSeek-R1"] == {"chat_completion"}
    assert capabilities["Cohere-embed-v3-multilingual"] == {"embeddings"}
    assert capabilities["gpt-4o"] == {"chat_completion"}
    assert capabilities["text-embedding-ada-002"] == {"embeddings"}
