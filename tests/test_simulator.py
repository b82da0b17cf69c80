"""The upstream simulator over real HTTP, driven by the official openai SDK and aiohttp."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import struct
import sys
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
from openai.lib.azure import AsyncAzureOpenAI
from openai.types.chat import ChatCompletionMessageParam

from shared.simulator.content import count_tokens
from tests.support.sim_control import KEY, SimControl, simulator_fixtures

API_VERSION = "2024-10-21"
USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello there"}]
REPO_ROOT = Path(__file__).resolve().parents[1]
AUTH = {"Authorization": f"Bearer {KEY}"}


class Sim(SimControl):
    def openai(self, **kwargs: Any) -> openai.AsyncOpenAI:
        kwargs.setdefault("api_key", KEY)
        kwargs.setdefault("max_retries", 0)
        return openai.AsyncOpenAI(base_url=self.url + "/v1", **kwargs)

    def azure(self, **kwargs: Any) -> AsyncAzureOpenAI:
        kwargs.setdefault("api_key", KEY)
        kwargs.setdefault("max_retries", 0)
        return AsyncAzureOpenAI(azure_endpoint=self.url, api_version=API_VERSION, **kwargs)


sim_server, sim = simulator_fixtures(Sim)


def sse_payloads(raw: bytes) -> list[str]:
    frames = raw.decode().split("\n\n")
    assert frames[-1] == "", "stream must end with a blank line"
    assert all(f.startswith("data: ") for f in frames[:-1])
    return [f.removeprefix("data: ") for f in frames[:-1]]


def test_count_tokens() -> None:
    assert count_tokens("") == 0
    assert count_tokens("hello  world, again") == 3
    assert count_tokens("你好 world") == 3


async def test_openai_chat(sim: Sim) -> None:
    raw = await sim.openai().chat.completions.with_raw_response.create(
        model="gpt-4o", messages=USER
    )
    completion = raw.parse()
    assert raw.headers["x-request-id"].startswith("req_")
    assert "apim-request-id" not in raw.headers
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == "gpt-4o-2024-08-06"
    content = completion.choices[0].message.content
    assert content is not None and content.startswith("Echo: hello there ")
    assert count_tokens(content) == 16
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    # 3 (reply primer) + 3 (message) + "user" + "hello there"
    assert completion.usage.prompt_tokens == 3 + 3 + 1 + 2
    assert completion.usage.completion_tokens == 16
    assert completion.usage.total_tokens == 9 + 16


async def test_azure_chat(sim: Sim) -> None:
    raw = await sim.azure().chat.completions.with_raw_response.create(
        model="gpt-35-turbo", messages=USER
    )
    completion = raw.parse()
    assert raw.headers["x-ms-region"] == "Simulated"
    assert raw.headers["apim-request-id"] == raw.headers["x-request-id"]
    assert completion.model == "gpt-35-turbo"
    extra = completion.model_extra or {}
    assert extra["prompt_filter_results"][0]["content_filter_results"]["hate"]["filtered"] is False
    choice_extra = completion.choices[0].model_extra or {}
    assert "content_filter_results" in choice_extra
    records = await sim.requests()
    assert records[-1]["path"] == "/openai/deployments/gpt-35-turbo/chat/completions"
    assert records[-1]["query"] == {"api-version": API_VERSION}
    assert records[-1]["headers"]["api-key"] == KEY


async def test_max_tokens_and_n(sim: Sim) -> None:
    completion = await sim.openai().chat.completions.create(
        model="gpt-4-turbo", messages=USER, max_tokens=3, n=2
    )
    assert [c.message.content for c in completion.choices] == ["Echo: hello there"] * 2
    assert {c.finish_reason for c in completion.choices} == {"length"}
    assert completion.usage is not None and completion.usage.completion_tokens == 6


async def test_openai_stream_matches_non_stream(sim: Sim) -> None:
    client = sim.openai()
    full = await client.chat.completions.create(model="gpt-4o", messages=USER)
    stream = await client.chat.completions.create(model="gpt-4o", messages=USER, stream=True)
    chunks = [chunk async for chunk in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(chunk.usage is None for chunk in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == full.choices[0].message.content
    assert len(chunks) == 1 + 16 + 1  # role, one per token, finish


async def test_azure_stream_include_usage(sim: Sim) -> None:
    stream = await sim.azure().chat.completions.create(
        model="gpt-4o", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    first, last = chunks[0], chunks[-1]
    assert first.id == "" and first.choices == []
    assert "prompt_filter_results" in (first.model_extra or {})
    assert last.choices == [] and last.usage is not None
    assert last.usage.completion_tokens == 16
    assert all(chunk.usage is None for chunk in chunks[:-1])
    assert chunks[-2].choices[0].finish_reason == "stop"


async def test_raw_stream_framing(sim: Sim) -> None:
    body = {"model": "gpt-4o", "messages": USER, "stream": True}
    headers = {**AUTH, "Accept": "application/json"}  # what the SDK sends for streams too
    async with sim.http.post(sim.url + "/v1/chat/completions", json=body, headers=headers) as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        payloads = sse_payloads(await resp.read())
    assert payloads[-1] == "[DONE]"
    assert json.loads(payloads[-2])["choices"][0]["finish_reason"] == "stop"


async def test_embeddings_sdk_default_base64(sim: Sim) -> None:
    result = await sim.openai().embeddings.create(
        model="text-embedding-ada-002", input=["alpha", "beta gamma"]
    )
    records = await sim.requests()
    assert records[-1]["body"]["encoding_format"] == "base64"
    assert [len(item.embedding) for item in result.data] == [1536, 1536]
    assert result.data[0].embedding != result.data[1].embedding
    assert result.usage.prompt_tokens == 3 and result.usage.total_tokens == 3
    norm = sum(x * x for x in result.data[0].embedding)
    assert norm == pytest.approx(1.0, rel=1e-4)


async def test_embeddings_float_equals_base64(sim: Sim) -> None:
    async def fetch(encoding: str) -> Any:
        body: dict[str, Any] = {"model": "text-embedding-3-small", "input": "alpha"}
        body.update(encoding_format=encoding, dimensions=64)
        async with sim.http.post(sim.url + "/v1/embeddings", json=body, headers=AUTH) as resp:
            assert resp.status == 200
            return (await resp.json())["data"][0]["embedding"]

    floats, encoded = await fetch("float"), await fetch("base64")
    assert isinstance(encoded, str) and len(floats) == 64
    decoded = struct.unpack("<64f", base64.b64decode(encoded))
    assert list(decoded) == floats
    azure = await sim.azure().embeddings.create(
        model="text-embedding-3-small", input="alpha", dimensions=64, encoding_format="float"
    )
    assert azure.data[0].embedding == floats


async def test_bad_key_is_401_without_echo(sim: Sim) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        await sim.openai(api_key="sk-wrong-secret").chat.completions.create(
            model="gpt-4o", messages=USER
        )
    assert caught.value.code == "invalid_api_key"
    assert "wrong-secret" not in caught.value.response.text
    with pytest.raises(openai.AuthenticationError) as azure_caught:
        await sim.azure(api_key="nope").models.list()
    assert azure_caught.value.code == "401"
    # Azure also takes the key as a Bearer token (Entra-style header).
    assert (await sim.azure(api_key=None, azure_ad_token=KEY).models.list()).data


async def test_key_rotation_via_config(sim: Sim) -> None:
    config = await sim.set_config(api_keys=["rotated"])
    assert config["api_keys"] == ["rotated"]
    with pytest.raises(openai.AuthenticationError):
        await sim.openai().models.list()
    models = await sim.openai(api_key="rotated").models.list()
    assert "gpt-35-turbo-16k" in {m.id for m in models.data}


async def test_unknown_model_and_wrong_kind(sim: Sim) -> None:
    with pytest.raises(openai.NotFoundError) as openai_caught:
        await sim.openai().chat.completions.create(model="gpt-9", messages=USER)
    assert openai_caught.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError) as azure_caught:
        await sim.azure().chat.completions.create(model="my-missing-dep", messages=USER)
    assert azure_caught.value.code == "DeploymentNotFound"
    with pytest.raises(openai.BadRequestError):
        await sim.azure().embeddings.create(model="gpt-4o", input="x")
    with pytest.raises(openai.BadRequestError):
        await sim.openai().chat.completions.create(model="text-embedding-ada-002", messages=USER)


async def test_azure_paths_need_api_version(sim: Sim) -> None:
    url = sim.url + "/openai/deployments/gpt-4o/chat/completions"
    async with sim.http.post(url, json={"messages": USER}, headers={"api-key": KEY}) as resp:
        assert resp.status == 404
        assert await resp.json() == {"error": {"code": "404", "message": "Resource not found"}}
        assert resp.headers["x-ms-region"] == "Simulated"
    async with sim.http.get(sim.url + "/v1/nothing-here", headers=AUTH) as resp:
        assert resp.status == 404
        assert (await resp.json())["error"]["message"] == "Invalid URL (GET /v1/nothing-here)"


async def test_fault_429_with_retry_after(sim: Sim) -> None:
    await sim.fault(status=429, retry_after=2, deployment="gpt-35-turbo")
    client = sim.azure()
    await client.chat.completions.create(model="gpt-4o", messages=USER)  # filter: unaffected
    with pytest.raises(openai.RateLimitError) as caught:
        await client.chat.completions.create(model="gpt-35-turbo", messages=USER)
    assert caught.value.response.headers["retry-after"] == "2"
    assert caught.value.code == "429"
    assert "Please retry after 2 seconds" in caught.value.message
    again = await client.chat.completions.create(model="gpt-35-turbo", messages=USER)
    assert again.choices[0].finish_reason == "stop"


async def test_sdk_retries_on_retry_after_ms(sim: Sim) -> None:
    await sim.fault(status=503, retry_after_ms=10, count=1)
    completion = await sim.openai(max_retries=1).chat.completions.create(
        model="gpt-4o", messages=USER
    )
    assert completion.choices[0].message.content
    records = await sim.requests()
    assert [r["status"] for r in records] == [503, 200]
    assert [r["headers"]["x-stainless-retry-count"] for r in records] == ["0", "1"]


async def test_reset_mid_stream(sim: Sim) -> None:
    await sim.fault(reset_after_chunks=3)
    body = {"model": "gpt-4o", "messages": USER, "stream": True}
    received = b""
    with pytest.raises(aiohttp.ClientPayloadError):
        async with sim.http.post(sim.url + "/v1/chat/completions", json=body, headers=AUTH) as r:
            async for data in r.content.iter_any():
                received += data
    assert len(sse_payloads(received)) == 3
    assert b"[DONE]" not in received
    record = (await sim.requests())[-1]
    assert record["reset"] is True and record["chunks_sent"] == 3


async def test_request_recording(sim: Sim) -> None:
    await sim.openai().chat.completions.create(model="gpt-4o", messages=USER, user="u1")
    (record,) = await sim.requests()
    assert record["method"] == "POST" and record["path"] == "/v1/chat/completions"
    assert record["headers"]["authorization"] == f"Bearer {KEY}"
    assert record["body"]["model"] == "gpt-4o" and record["body"]["user"] == "u1"
    assert record["status"] == 200 and record["client_disconnected"] is False
    assert await sim.control("DELETE", "requests") == (200, {"requests": []})
    assert await sim.requests() == []


async def wait_for_record(sim: Sim, field: str) -> dict[str, Any]:
    for _ in range(100):
        records = await sim.requests()
        if records and records[-1].get(field):
            return records[-1]
        await asyncio.sleep(0.02)
    raise AssertionError(f"no record with {field} set: {records}")


async def test_client_disconnect_is_recorded(sim: Sim) -> None:
    await sim.set_config(tokens_per_second=50)
    body = {"model": "gpt-4o", "messages": USER, "stream": True}
    async with aiohttp.ClientSession() as own:
        resp = await own.post(sim.url + "/v1/chat/completions", json=body, headers=AUTH)
        assert (await resp.content.readline()).startswith(b"data: ")
        resp.close()
    record = await wait_for_record(sim, "client_disconnected")
    assert record["chunks_sent"] < 18


async def test_delay_fault_timeout_is_recorded(sim: Sim) -> None:
    await sim.fault(delay_ms=3000)
    with pytest.raises(openai.APITimeoutError):
        await sim.openai(timeout=0.2).chat.completions.create(model="gpt-4o", messages=USER)
    record = await wait_for_record(sim, "client_disconnected")
    assert record["fault"]["delay_ms"] == 3000 and record["status"] is None


async def test_pacing_sends_first_chunk_before_last(sim: Sim) -> None:
    await sim.set_config(tokens_per_second=20, completion_tokens=8)
    body = {"model": "gpt-4o", "messages": USER, "stream": True}
    async with sim.http.post(sim.url + "/v1/chat/completions", json=body, headers=AUTH) as resp:
        await resp.content.readuntil(b"\n\n")  # role chunk
        first_token = await resp.content.readuntil(b"\n\n")
        assert b"Echo:" in first_token
        sent_when_first_arrived = (await sim.requests())[-1]["chunks_sent"]
        rest = sse_payloads(await resp.read())
    assert sent_when_first_arrived < 1 + 8 + 1
    assert rest[-1] == "[DONE]"
    assert (await sim.requests())[-1]["chunks_sent"] == 1 + 8 + 1 + 1


async def test_control_api_validation(sim: Sim) -> None:
    status, body = await sim.control("POST", "faults", status=429, bogus=1)
    assert status == 400 and "bogus" in body["error"]
    assert (await sim.control("POST", "faults", count=2))[0] == 400  # no effect given
    assert (await sim.control("POST", "config", latency_ms=-1))[0] == 400
    await sim.fault(status=500, count=2)
    _, body = await sim.control("GET", "faults")
    assert [fault["count"] for fault in body["faults"]] == [2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_standalone_main() -> None:
    port = free_port()
    args = ["-m", "shared.simulator", "--port", str(port), "--key", "k1", "--latency-ms", "0"]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *args, cwd=REPO_ROOT, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                try:
                    url = f"http://127.0.0.1:{port}/v1/models"
                    async with session.get(url, headers={"Authorization": "Bearer k1"}) as r:
                        assert r.status == 200
                        assert len((await r.json())["data"]) == 20
                        return
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
        raise AssertionError("simulator did not start")
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), timeout=5)
