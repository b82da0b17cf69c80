"""The simulator's files (`/files`) and batches (`/batches`) on `/v1`, `/openai/v1` and Azure's
`/openai`, over real HTTP on 127.0.0.1, driven by the official openai SDK and, for raw answers
and the `/_sim/` control API, by aiohttp."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from typing import Any

import aiohttp
import openai
import pytest
from openai.types import Batch
from openai.types.chat import ChatCompletionMessageParam

from tests.support.sim_control import KEY, SimControl, simulator_fixtures

API_VERSION = "2024-10-21"
AUTH = {"Authorization": f"Bearer {KEY}"}
BATCH_MS = 600  # a batch's life in these tests (the simulator's default is 1500)
POLL_SECONDS = 0.02
POLL_LIMIT = 500  # reads of a batch before giving up (with a 10 s deadline besides)
LIFE = ("validating", "in_progress", "finalizing", "completed")
USAGE_KEYS = ("input_tokens", "cached_tokens", "output_tokens", "reasoning_tokens", "total_tokens")
AZURE_NOT_FOUND = {"error": {"code": "404", "message": "Resource not found"}}


class Sim(SimControl):
    async def raw(
        self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> tuple[int, Any]:
        sent = AUTH if headers is None else headers
        async with self.http.request(method, self.url + path, headers=sent, **kwargs) as resp:
            return resp.status, await resp.json()

    async def sim_get(self, what: str) -> Any:
        status, body = await self.control("GET", what)
        assert status == 200
        return body

    async def reset(self) -> None:
        await super().reset()
        for what in ("files", "batches", "uploads"):
            await self.control("DELETE", what)


sim_server, sim = simulator_fixtures(Sim)


@pytest.fixture(autouse=True)
async def short_batches(sim: Sim) -> None:
    await sim.set_config(batch_ms=BATCH_MS)


def chat_line(custom_id: str, model: str, text: str, url: str = "/v1/chat/completions") -> str:
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": url, "body": body})


def jsonl(*lines: str) -> bytes:
    return "".join(line + "\n" for line in lines).encode()


async def settle(
    client: openai.AsyncOpenAI, batch_id: str, until: str = "completed"
) -> list[Batch]:
    """Every read of the batch until it shows ``until`` (bounded by count and by time)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    seen: list[Batch] = []
    for _ in range(POLL_LIMIT):
        batch = await client.batches.retrieve(batch_id)
        seen.append(batch)
        if batch.status == until:
            return seen
        assert batch.status in LIFE, batch.status
        assert loop.time() < deadline, f"batch still {batch.status}"
        await asyncio.sleep(POLL_SECONDS)
    raise AssertionError(f"batch never reached {until}")


def line_usage(usage: dict[str, Any]) -> tuple[int, int, int, int, int]:
    """(input, cached, output, reasoning, total) of one answer's usage, in any API's shape."""
    given = usage.get("input_tokens", usage.get("prompt_tokens", 0))
    made = usage.get("output_tokens", usage.get("completion_tokens", 0))
    details_in = usage.get("input_tokens_details") or usage.get("prompt_tokens_details") or {}
    details_out = usage.get("output_tokens_details") or usage.get("completion_tokens_details") or {}
    cached = details_in.get("cached_tokens", 0)
    reasoning = details_out.get("reasoning_tokens", 0)
    return given, cached, made, reasoning, usage["total_tokens"]


def batch_usage(batch: Batch) -> tuple[int, int, int, int, int]:
    usage = batch.usage
    assert usage is not None
    return (
        usage.input_tokens,
        usage.input_tokens_details.cached_tokens,
        usage.output_tokens,
        usage.output_tokens_details.reasoning_tokens,
        usage.total_tokens,
    )


def summed(lines: list[dict[str, Any]]) -> tuple[int, ...]:
    rows = [line_usage(line["response"]["body"]["usage"]) for line in lines]
    return tuple(sum(row[i] for row in rows) for i in range(len(USAGE_KEYS)))


async def content_lines(client: openai.AsyncOpenAI, file_id: str) -> list[dict[str, Any]]:
    content = await client.files.content(file_id)
    return [json.loads(line) for line in content.text.splitlines()]


# Files


async def test_upload_list_retrieve_content_and_delete(sim: Sim) -> None:
    client = sim.client()
    data = jsonl(chat_line("a", "gpt-4o", "hello"))
    created = await client.files.create(file=("input.jsonl", data), purpose="batch")
    assert created.id.startswith("file-") and len(created.id) == len("file-") + 32
    assert (created.object, created.purpose, created.status) == ("file", "batch", "processed")
    assert (created.bytes, created.filename) == (len(data), "input.jsonl")
    assert created.status_details is None and created.created_at > 0
    other = await client.files.create(file=("notes.txt", b"some notes"), purpose="user_data")

    listed = await client.files.list()
    assert [f.id for f in listed.data] == [other.id, created.id]  # newest first
    assert listed.has_more is False
    status, wire = await sim.raw("GET", "/v1/files?limit=1")
    assert status == 200 and wire["object"] == "list"
    assert (wire["first_id"], wire["last_id"], wire["has_more"]) == (other.id, other.id, True)
    oldest_first = await client.files.list(order="asc")
    assert [f.id for f in oldest_first.data] == [created.id, other.id]
    assert [f.id for f in (await client.files.list(purpose="batch")).data] == [created.id]
    first = await client.files.list(limit=1)
    assert [f.id for f in first.data] == [other.id] and first.has_more is True
    after = await client.files.list(limit=1, after=other.id)
    assert [f.id for f in after.data] == [created.id] and after.has_more is False

    assert await client.files.retrieve(created.id) == created
    content = await client.files.with_raw_response.content(created.id)
    assert content.headers["content-type"] == "application/jsonl"
    assert (await client.files.content(created.id)).content == data
    deleted = await client.files.delete(created.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (created.id, "file", True)
    assert [f.id for f in (await client.files.list()).data] == [other.id]
    with pytest.raises(openai.NotFoundError):
        await client.files.retrieve(created.id)


async def test_a_large_upload_arrives_byte_for_byte(sim: Sim) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)  # above aiohttp's 1 MiB limit on bodies read whole
    digest = hashlib.sha256(data).hexdigest()
    created = await sim.client().files.create(file=("blob.bin", data), purpose="user_data")
    assert created.bytes == len(data)
    (kept,) = (await sim.sim_get("files"))["files"]
    assert kept == {
        "id": created.id,
        "bytes": len(data),
        "sha256": digest,
        "purpose": "user_data",
        "filename": "blob.bin",
    }
    (upload,) = (await sim.sim_get("uploads"))["uploads"]
    assert (upload["field"], upload["bytes"], upload["sha256"]) == ("file", len(data), digest)
    assert upload["path"] == "/v1/files" and upload["operation"] == "files"
    (record,) = await sim.requests()
    assert record["body"] == {"purpose": "user_data"} and record["status"] == 200
    assert record["uploads"][0]["sha256"] == digest and record["id"] == upload["request_id"]
    assert (await sim.client().files.content(created.id)).content == data


@pytest.mark.parametrize("purpose", ["assistants", "fine-tune", "vision", "user_data", "evals"])
async def test_the_other_purposes_are_accepted(sim: Sim, purpose: str) -> None:
    created = await sim.client().files.create(file=("f.jsonl", b"{}\n"), purpose=purpose)  # type: ignore[arg-type]
    assert created.purpose == purpose


async def test_uploads_openai_refuses(sim: Sim) -> None:
    client = sim.client()
    with pytest.raises(openai.BadRequestError) as caught:
        await client.files.create(file=("f.jsonl", b"{}\n"), purpose="batch_output")  # type: ignore[arg-type]
    assert (caught.value.param, caught.value.code) == ("purpose", "invalid_value")
    with pytest.raises(openai.BadRequestError) as not_jsonl:
        await client.files.create(file=("f.txt", b"{}\n"), purpose="batch")
    assert "Must be .jsonl" in not_jsonl.value.message
    form = aiohttp.FormData({"purpose": "batch"}, default_to_multipart=True)
    status, body = await sim.raw("POST", "/v1/files", data=form)
    assert (status, body["error"]["param"]) == (400, "file")
    status, body = await sim.raw("POST", "/v1/files", json={"purpose": "batch"})
    assert status == 400 and "multipart/form-data" in body["error"]["message"]
    assert (await sim.sim_get("files"))["files"] == []


async def test_v1_and_azure_prefixes(sim: Sim) -> None:
    v1 = await sim.client("/openai/v1").files.create(file=("a.jsonl", b"{}\n"), purpose="batch")
    azure = sim.azure()
    uploaded = await azure.files.create(file=("b.jsonl", b"{}\n"), purpose="batch")
    assert {f.id for f in (await azure.files.list()).data} == {v1.id, uploaded.id}
    assert (await azure.files.content(v1.id)).content == b"{}\n"
    paths = [(r["method"], r["path"], r["query"]) for r in await sim.requests()]
    assert paths[:3] == [
        ("POST", "/openai/v1/files", {}),
        ("POST", "/openai/files", {"api-version": API_VERSION}),
        ("GET", "/openai/files", {"api-version": API_VERSION}),
    ]
    headers = {"api-key": KEY}
    assert await sim.raw("GET", "/openai/files", headers) == (404, AZURE_NOT_FOUND)
    status, _ = await sim.raw("GET", f"/openai/files/{v1.id}?api-version={API_VERSION}", headers)
    assert status == 200


# Batches


async def test_a_chat_batch_completes_with_output_errors_and_usage(sim: Sim) -> None:
    client = sim.client()
    texts = {"one": "hello there", "two": "how are you today", "three": "a b c d e"}
    lines = [chat_line(cid, "gpt-4o", text) for cid, text in texts.items()]
    lines.append(chat_line("ghost", "gpt-nope", "nobody serves me"))
    upload = await client.files.create(file=("in.jsonl", jsonl(*lines)), purpose="batch")
    batch = await client.batches.create(
        input_file_id=upload.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"job": "nightly"},
    )
    assert batch.id.startswith("batch_") and len(batch.id) == len("batch_") + 32
    assert (batch.status, batch.endpoint, batch.input_file_id) == (
        "validating",
        "/v1/chat/completions",
        upload.id,
    )
    assert batch.metadata == {"job": "nightly"} and batch.completion_window == "24h"
    assert batch.expires_at == batch.created_at + 24 * 3600

    reads = await settle(client, batch.id)
    statuses = [read.status for read in reads]
    assert statuses == sorted(statuses, key=LIFE.index) and "in_progress" in statuses
    done = reads[-1]
    assert done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.completed) == (4, 3)
    assert done.request_counts.failed == 1
    assert done.in_progress_at and done.finalizing_at and done.completed_at
    assert done.created_at <= done.in_progress_at <= done.finalizing_at <= done.completed_at
    assert done.output_file_id and done.error_file_id

    output = await content_lines(client, done.output_file_id)
    assert [line["custom_id"] for line in output] == ["one", "two", "three"]
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": texts["one"]}]
    raw = await client.chat.completions.with_raw_response.create(model="gpt-4o", messages=messages)
    direct = json.loads(raw.text)  # the simulator's own answer to the first line's body
    for line in output:
        assert line["id"].startswith("batch_req_") and line["error"] is None
        response = line["response"]
        assert response["status_code"] == 200 and response["request_id"].startswith("req_")
        assert set(response["body"]) == set(direct)
    first = output[0]["response"]["body"]
    for same in ("object", "model", "choices", "usage", "system_fingerprint", "service_tier"):
        assert first[same] == direct[same], same
    assert batch_usage(done) == summed(output)
    assert done.usage is not None and done.usage.input_tokens > 0

    (failed,) = await content_lines(client, done.error_file_id)
    assert failed["custom_id"] == "ghost" and failed["error"]["code"] == "model_not_found"
    assert "gpt-nope" in failed["error"]["message"]
    assert failed["response"]["status_code"] == 404
    outputs = await client.files.list(purpose="batch_output")
    assert {f.id for f in outputs.data} == {done.output_file_id, done.error_file_id}
    assert (await sim.sim_get("batches"))["created"] == 1


@pytest.mark.parametrize(
    ("endpoint", "model", "body"),
    [
        ("/v1/embeddings", "text-embedding-3-small", {"input": ["one two", "three"]}),
        ("/v1/completions", "gpt-35-turbo-instruct", {"prompt": "say this", "max_tokens": 5}),
        ("/v1/responses", "gpt-4o", {"input": "tell me a story"}),
    ],
)
async def test_other_endpoints_sum_their_usage(
    sim: Sim, endpoint: str, model: str, body: dict[str, Any]
) -> None:
    await sim.set_config(batch_ms=50)
    client = sim.client()
    lines = [
        json.dumps(
            {
                "custom_id": f"r{i}",
                "method": "POST",
                "url": endpoint,
                "body": {**body, "model": model},
            }
        )
        for i in range(3)
    ]
    upload = await client.files.create(file=("in.jsonl", jsonl(*lines)), purpose="batch")
    batch = await client.batches.create(
        input_file_id=upload.id,
        endpoint=endpoint,  # type: ignore[arg-type]
        completion_window="24h",
    )
    done = (await settle(client, batch.id))[-1]
    assert done.request_counts is not None and done.request_counts.completed == 3
    assert done.error_file_id is None and done.output_file_id
    output = await content_lines(client, done.output_file_id)
    assert len(output) == 3 and all(line["response"]["status_code"] == 200 for line in output)
    assert batch_usage(done) == summed(output)
    assert done.usage is not None and done.usage.total_tokens > 0


async def test_a_line_the_endpoint_refuses_goes_to_the_error_file(sim: Sim) -> None:
    await sim.set_config(batch_ms=50)
    client = sim.client()
    bad = {"model": "gpt-4o", "messages": []}
    lines = [
        chat_line("fine", "gpt-4o", "hi"),
        json.dumps(
            {"custom_id": "empty", "method": "POST", "url": "/v1/chat/completions", "body": bad}
        ),
        chat_line("wrong-kind", "text-embedding-3-small", "hi"),
    ]
    upload = await client.files.create(file=("in.jsonl", jsonl(*lines)), purpose="batch")
    batch = await client.batches.create(
        input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    done = (await settle(client, batch.id))[-1]
    assert done.request_counts is not None
    assert (done.request_counts.completed, done.request_counts.failed) == (1, 2)
    assert done.error_file_id is not None and done.output_file_id is not None
    failed = {line["custom_id"]: line for line in await content_lines(client, done.error_file_id)}
    assert failed["empty"]["response"]["status_code"] == 400
    assert failed["empty"]["response"]["body"]["error"]["param"] == "messages"
    assert failed["wrong-kind"]["error"]["code"] == "model_not_supported"
    assert batch_usage(done) == summed(await content_lines(client, done.output_file_id))


async def test_an_azure_batch(sim: Sim) -> None:
    await sim.set_config(batch_ms=50)
    azure = sim.azure()
    lines = [chat_line(f"c{i}", "gpt-35-turbo", "hello", url="/chat/completions") for i in range(2)]
    upload = await azure.files.create(file=("in.jsonl", jsonl(*lines)), purpose="batch")
    batch = await azure.batches.create(
        input_file_id=upload.id,
        endpoint="/chat/completions",  # type: ignore[arg-type]
        completion_window="24h",
    )
    done = (await settle(azure, batch.id))[-1]
    assert done.request_counts is not None and done.request_counts.completed == 2
    assert done.output_file_id is not None
    output = await content_lines(azure, done.output_file_id)
    body = output[0]["response"]["body"]
    assert body["model"] == "gpt-35-turbo" and "prompt_filter_results" in body  # Azure's shape
    assert batch_usage(done) == summed(output)
    record = (await sim.requests())[1]
    assert (record["path"], record["query"]) == ("/openai/batches", {"api-version": API_VERSION})
    listed = await azure.batches.list()
    assert [b.id for b in listed.data] == [batch.id]


async def test_a_malformed_input_file_fails_the_batch(sim: Sim) -> None:
    await sim.set_config(batch_ms=50)
    client = sim.client()
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    lines = [
        "this is not json",
        json.dumps({"method": "POST", "url": "/v1/chat/completions", "body": body}),
        json.dumps({"custom_id": "x", "method": "POST", "url": "/v1/embeddings", "body": body}),
        json.dumps(
            {"custom_id": "y", "method": "GET", "url": "/v1/chat/completions", "body": body}
        ),
        chat_line("z", "gpt-4o", "fine"),
    ]
    upload = await client.files.create(file=("bad.jsonl", jsonl(*lines)), purpose="batch")
    batch = await client.batches.create(
        input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert batch.status == "validating"
    failed = (await settle(client, batch.id, until="failed"))[-1]
    assert failed.errors is not None and failed.errors.data is not None
    problems = [(e.line, e.code) for e in failed.errors.data]
    assert problems == [
        (1, "invalid_json_line"),
        (2, "missing_required_parameter"),
        (3, "invalid_url"),
        (4, "invalid_method"),
    ]
    assert failed.failed_at is not None and failed.completed_at is None
    assert failed.output_file_id is None and failed.error_file_id is None
    assert batch_usage(failed) == (0, 0, 0, 0, 0)


async def test_refused_creations_make_no_batch(sim: Sim) -> None:
    client = sim.client()
    notes = await client.files.create(file=("n.jsonl", b"{}\n"), purpose="user_data")
    good = await client.files.create(
        file=("g.jsonl", jsonl(chat_line("a", "gpt-4o", "hi"))), purpose="batch"
    )
    refused = [
        (
            {"input_file_id": notes.id, "endpoint": "/v1/chat/completions"},
            "input_file_id",
            "purpose",
        ),
        (
            {"input_file_id": "file-" + "0" * 32, "endpoint": "/v1/chat/completions"},
            "input_file_id",
            "No such file",
        ),
        ({"input_file_id": good.id, "endpoint": "/v1/moderations"}, "endpoint", "Supported values"),
        (
            {
                "input_file_id": good.id,
                "endpoint": "/v1/chat/completions",
                "completion_window": "48h",
            },
            "completion_window",
            "24h",
        ),
    ]
    for body, param, words in refused:
        status, answer = await sim.raw(
            "POST", "/v1/batches", json={"completion_window": "24h", **body}
        )
        assert status == 400, body
        error = answer["error"]
        assert (error["type"], error["param"]) == ("invalid_request_error", param)
        assert words in error["message"]
    assert await sim.sim_get("batches") == {"created": 0, "batches": []}
    assert [r["status"] for r in await sim.requests() if r["operation"] == "batches"] == [400] * 4


async def test_cancel(sim: Sim) -> None:
    await sim.set_config(batch_ms=60_000)
    client = sim.client()
    upload = await client.files.create(
        file=("in.jsonl", jsonl(chat_line("a", "gpt-4o", "hi"))), purpose="batch"
    )
    batch = await client.batches.create(
        input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    cancelling = await client.batches.cancel(batch.id)
    assert cancelling.status == "cancelling" and cancelling.cancelling_at is not None
    cancelled = await client.batches.retrieve(batch.id)
    assert cancelled.status == "cancelled" and cancelled.cancelled_at is not None
    assert cancelled.request_counts is not None and cancelled.request_counts.completed == 0
    assert batch_usage(cancelled) == (0, 0, 0, 0, 0) and cancelled.output_file_id is None
    assert (await client.batches.cancel(batch.id)).status == "cancelled"  # again: no change

    await sim.set_config(batch_ms=0)
    finished = await client.batches.create(
        input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert (await client.batches.retrieve(finished.id)).status == "completed"
    with pytest.raises(openai.BadRequestError) as caught:
        await client.batches.cancel(finished.id)
    assert "Cannot cancel a batch with status 'completed'" in caught.value.message


async def test_unknown_ids_are_not_found(sim: Sim) -> None:
    client, azure = sim.client(), sim.azure()
    file_id, batch_id = "file-" + "f" * 32, "batch_" + "b" * 32
    calls = [
        client.files.retrieve(file_id),
        client.files.content(file_id),
        client.files.delete(file_id),
        client.batches.retrieve(batch_id),
        client.batches.cancel(batch_id),
        azure.files.retrieve(file_id),
        azure.batches.retrieve(batch_id),
    ]
    for call in calls:
        with pytest.raises(openai.NotFoundError) as caught:
            await call
        assert caught.value.status_code == 404
        body = caught.value.body
        assert isinstance(body, dict) and body["type"] == "invalid_request_error"
    assert all(r["status"] == 404 for r in await sim.requests())


async def test_batches_list_pages_newest_first(sim: Sim) -> None:
    client = sim.client()
    upload = await client.files.create(
        file=("in.jsonl", jsonl(chat_line("a", "gpt-4o", "hi"))), purpose="batch"
    )
    ids = []
    for _ in range(3):
        batch = await client.batches.create(
            input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        ids.append(batch.id)
    first = await client.batches.list(limit=2)
    assert [b.id for b in first.data] == [ids[2], ids[1]] and first.has_more is True
    rest = await client.batches.list(limit=2, after=ids[1])
    assert [b.id for b in rest.data] == [ids[0]] and rest.has_more is False
    assert (await sim.sim_get("batches"))["created"] == 3


async def test_faults_and_auth_apply(sim: Sim) -> None:
    client = sim.client()
    upload = await client.files.create(
        file=("in.jsonl", jsonl(chat_line("a", "gpt-4o", "hi"))), purpose="batch"
    )
    await sim.fault(status=429, retry_after=3)
    with pytest.raises(openai.RateLimitError) as caught:
        await client.batches.create(
            input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
    assert caught.value.response.headers["retry-after"] == "3"
    assert (await sim.sim_get("batches"))["created"] == 0
    await sim.fault(status=500)
    with pytest.raises(openai.InternalServerError):
        await client.files.list()
    await sim.fault(status=503)
    with pytest.raises(openai.APIStatusError) as unavailable:
        await client.files.create(file=("x.jsonl", b"{}\n"), purpose="batch")
    assert unavailable.value.status_code == 503
    assert len((await sim.sim_get("files"))["files"]) == 1
    status, answer = await sim.raw("GET", "/v1/files", headers={})
    assert status == 401 and "API key" in answer["error"]["message"]
    azure_path = f"/openai/batches?api-version={API_VERSION}"
    status, answer = await sim.raw("GET", azure_path, headers={"api-key": "wrong"})
    assert (status, answer["error"]["code"]) == (401, "401")
