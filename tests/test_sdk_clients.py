"""The official openai SDK, both clients, sync and async, streamed and not, through the gateway."""

from __future__ import annotations

import openai
import pytest
from openai import AsyncAzureOpenAI, AsyncOpenAI, AzureOpenAI, OpenAI
from openai.types.chat import ChatCompletionMessageParam

from tests.conftest import Live

API_VERSION = "2024-10-21"
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Tell me about Tollgate"}]


def sync_client(live: Live, kind: str, key: str | None = None) -> OpenAI:
    key = key or live.seed_key
    if kind == "azure-v1":
        return OpenAI(base_url=f"{live.url}/openai/v1", api_key=key, max_retries=0)
    if kind == "azure":
        return AzureOpenAI(
            azure_endpoint=live.url, api_key=key, api_version=API_VERSION, max_retries=0
        )
    return OpenAI(base_url=f"{live.url}/v1", api_key=key, max_retries=0)


def async_client(live: Live, kind: str) -> AsyncOpenAI:
    if kind == "azure":
        return AsyncAzureOpenAI(
            azure_endpoint=live.url, api_key=live.seed_key, api_version=API_VERSION, max_retries=0
        )
    return AsyncOpenAI(base_url=f"{live.url}/v1", api_key=live.seed_key, max_retries=0)


@pytest.mark.parametrize("kind", ["azure", "openai", "azure-v1"])
def test_sync_chat(live: Live, kind: str) -> None:
    reply = sync_client(live, kind).chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert "Tell me about Tollgate" in (reply.choices[0].message.content or "")
    assert reply.usage is not None and reply.usage.prompt_tokens > 0


@pytest.mark.parametrize("kind", ["azure", "openai", "azure-v1"])
def test_sync_chat_stream(live: Live, kind: str) -> None:
    stream = sync_client(live, kind).chat.completions.create(
        model="gpt-35-turbo", messages=MESSAGES, stream=True
    )
    pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
    assert len(pieces) > 3
    assert "Tell me about Tollgate" in "".join(pieces)


@pytest.mark.parametrize("kind", ["azure", "openai"])
async def test_async_chat_and_stream(live: Live, kind: str) -> None:
    async with async_client(live, kind) as client:
        reply = await client.chat.completions.create(model="gpt-4-turbo", messages=MESSAGES)
        assert reply.choices[0].finish_reason in ("stop", "length")
        stream = await client.chat.completions.create(
            model="gpt-4-turbo",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    usage = [c.usage for c in chunks if c.usage is not None]
    assert len(usage) == 1 and usage[0].completion_tokens > 0
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == reply.choices[0].message.content


@pytest.mark.parametrize("kind", ["azure", "openai", "azure-v1"])
def test_sync_embeddings(live: Live, kind: str) -> None:
    result = sync_client(live, kind).embeddings.create(
        model="text-embedding-3-small", input=["first text", "second text"]
    )
    assert [d.index for d in result.data] == [0, 1]
    assert len(result.data[0].embedding) > 100
    assert result.data[0].embedding != result.data[1].embedding
    assert result.usage.prompt_tokens > 0


@pytest.mark.parametrize("kind", ["azure", "openai"])
async def test_async_embeddings_float(live: Live, kind: str) -> None:
    async with async_client(live, kind) as client:
        result = await client.embeddings.create(
            model="text-embedding-3-small", input="hello", encoding_format="float"
        )
    assert isinstance(result.data[0].embedding[0], float)


def test_embeddings_via_the_seed_style_route(live: Live) -> None:
    import requests

    response = requests.post(
        f"{live.url}/gateway/embeddings/text-embedding-3-small",
        headers={"api-key": live.seed_key},
        json={"input": "hello", "encoding_format": "float"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"][0]["object"] == "embedding"


@pytest.mark.parametrize("kind", ["azure", "openai", "azure-v1"])
def test_models_list_shows_only_allowed_models(live: Live, kind: str) -> None:
    seed = {m.id for m in sync_client(live, kind).models.list()}
    assert {"gpt-4o", "gpt-35-turbo-16k", "text-embedding-3-small"} <= seed
    assert "text-embedding-ada-002" not in seed
    limited = {m.id for m in sync_client(live, kind, live.limited_key).models.list()}
    assert limited == {"gpt-35-turbo"}


def test_sdk_error_types(live: Live) -> None:
    with pytest.raises(openai.AuthenticationError):
        sync_client(live, "openai", "tg_nope").chat.completions.create(
            model="gpt-4o", messages=MESSAGES
        )
    with pytest.raises(openai.PermissionDeniedError):
        sync_client(live, "azure", live.limited_key).chat.completions.create(
            model="gpt-4o", messages=MESSAGES
        )
    with pytest.raises(openai.NotFoundError) as err:
        sync_client(live, "openai").chat.completions.create(model="gpt-9", messages=MESSAGES)
    assert err.value.code == "model_not_found"
