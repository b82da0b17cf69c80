"""The simulator's Responses API beyond create: background mode, cancel, resumed streams and
input token counts, over real HTTP on 127.0.0.1, driven by the official openai SDK and aiohttp."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import openai
import pytest
from openai.lib.azure import AsyncAzureOpenAI
from openai.types.responses import Response, ResponseStreamEvent, ToolParam

from tests.support.sim_control import KEY, SimControl, simulator_fixtures

API_VERSION = "2025-04-01-preview"
AUTH = {"Authorization": f"Bearer {KEY}"}
TOOLS: list[ToolParam] = [
    {"type": "function", "name": "lookup", "parameters": {"type": "object"}, "strict": False}
]
# The three client styles, with the path prefix each one calls and its query string.
PREFIXES = {"openai": "/v1", "azure-v1": "/openai/v1", "azure": "/openai"}


class Sim(SimControl):
    def client(self, kind: str = "openai") -> openai.AsyncOpenAI:
        if kind == "azure":
            return AsyncAzureOpenAI(
                azure_endpoint=self.url, api_version=API_VERSION, api_key=KEY, max_retries=0
            )
        base = self.url + PREFIXES[kind]
        return openai.AsyncOpenAI(base_url=base, api_key=KEY, max_retries=0)

    def api_url(self, kind: str, tail: str) -> str:
        query = f"?api-version={API_VERSION}" if kind == "azure" else ""
        return f"{self.url}{PREFIXES[kind]}{tail}{query}"

    async def get(self, url: str, **params: str) -> tuple[int, str, bytes]:
        async with self.http.get(url, headers=AUTH, params=params) as resp:
            return resp.status, resp.content_type, await resp.read()


sim_server, sim = simulator_fixtures(Sim)


def cancelled_usage(input_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 0,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens,
    }


async def wait_for_status(
    client: openai.AsyncOpenAI, response_id: str, status: str, within: float = 5.0
) -> Response:
    """Retrieve until the response shows ``status``; fails after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        got = await client.responses.retrieve(response_id)
        if got.status == status:
            return got
        assert got.status == "queued", got.status
        assert time.monotonic() < deadline, f"still {got.status}"
        await asyncio.sleep(0.02)


async def collect(stream: Any) -> list[ResponseStreamEvent]:
    return [event async for event in stream]


def dumped(events: list[ResponseStreamEvent]) -> list[dict[str, Any]]:
    return [event.model_dump() for event in events]


def numbers(events: list[ResponseStreamEvent]) -> list[int]:
    return [event.sequence_number for event in events]


# Background mode


async def test_background_create_is_queued_then_completes_with_a_creates_usage(sim: Sim) -> None:
    await sim.set_config(background_ms=300)
    client = sim.client()
    started = time.monotonic()
    raw = await client.responses.with_raw_response.create(
        model="gpt-4o", input="run me later", background=True
    )
    wire = json.loads(raw.text)
    assert (wire["status"], wire["usage"], wire["output"]) == ("queued", None, [])
    assert wire["background"] is True
    assert (await client.responses.retrieve(wire["id"])).status == "queued"

    done = await wait_for_status(client, wire["id"], "completed")
    assert time.monotonic() - started >= 0.3
    foreground = await client.responses.create(model="gpt-4o", input="run me later")
    assert done.background is True and foreground.background is False
    assert done.usage is not None and foreground.usage is not None
    assert done.usage.model_dump() == foreground.usage.model_dump()
    assert done.usage.output_tokens == 16
    assert done.output_text == foreground.output_text != ""


async def test_background_cut_by_max_output_tokens_ends_incomplete(sim: Sim) -> None:
    client = sim.client("azure")
    created = await client.responses.create(
        model="gpt-4o", input="short please", background=True, max_output_tokens=4
    )
    assert created.status == "queued"
    done = await wait_for_status(client, created.id, "incomplete")
    assert done.incomplete_details is not None
    assert done.incomplete_details.reason == "max_output_tokens"
    assert done.usage is not None and done.usage.output_tokens == 4
    assert done.usage.total_tokens == done.usage.input_tokens + 4


async def test_cancel_before_done_is_cancelled_for_good_with_input_only_usage(sim: Sim) -> None:
    await sim.set_config(background_ms=60_000)
    client = sim.client("azure-v1")
    body: dict[str, Any] = {"model": "gpt-4o", "input": "cancel me", "instructions": "Be brief."}
    created = await client.responses.create(**body, background=True)
    counted = await client.responses.input_tokens.count(**body)

    raw = await client.responses.with_raw_response.cancel(created.id)
    wire = json.loads(raw.text)
    assert (wire["status"], wire["output"], wire["background"]) == ("cancelled", [], True)
    assert wire["usage"] == cancelled_usage(counted.input_tokens)
    assert counted.input_tokens == 15  # (3 + 1 + 2) user + (3 + 1 + 2) instructions + 3

    again = await client.responses.retrieve(created.id)
    assert again.status == "cancelled"
    assert again.usage is not None and again.usage.output_tokens == 0
    assert (await client.responses.cancel(created.id)).status == "cancelled"


async def test_cancel_after_done_answers_it_unchanged(sim: Sim) -> None:
    client = sim.client()
    created = await client.responses.create(model="gpt-4o", input="quick", background=True)
    done = await wait_for_status(client, created.id, "completed")
    cancelled = await client.responses.cancel(created.id)
    assert cancelled.model_dump() == done.model_dump()
    assert (await client.responses.retrieve(created.id)).status == "completed"


async def test_cancel_of_a_foreground_response_is_still_400(sim: Sim) -> None:
    client = sim.client()
    created = await client.responses.create(model="gpt-4o", input="not in the background")
    with pytest.raises(openai.BadRequestError, match="background"):
        await client.responses.cancel(created.id)
    assert (await client.responses.retrieve(created.id)).status == "completed"


async def test_every_stored_response_says_whether_it_ran_in_the_background(sim: Sim) -> None:
    client = sim.client()
    foreground = await client.responses.with_raw_response.create(model="gpt-4o", input="a")
    assert json.loads(foreground.text)["background"] is False
    events = await collect(
        await client.responses.create(model="gpt-4o", input="b", stream=True, background=True)
    )
    assert events[-1].type == "response.completed"  # streamed as without background
    for response_id in (json.loads(foreground.text)["id"], events[-1].response.id):
        status, _, raw = await sim.get(sim.api_url("openai", f"/responses/{response_id}"))
        assert status == 200
        stored = json.loads(raw)
        assert stored["background"] is (response_id == events[-1].response.id)
        assert stored["status"] == "completed"


async def test_background_needs_store(sim: Sim) -> None:
    with pytest.raises(openai.BadRequestError, match="store"):
        await sim.client().responses.create(model="gpt-4o", input="x", background=True, store=False)


async def test_background_ms_is_run_time_config(sim: Sim) -> None:
    status, body = await sim.control("POST", "config", background_ms=-1)
    assert status == 400 and "background_ms" in body["error"]
    await sim.set_config(background_ms=250)
    assert (await sim.control("GET", "config"))[1]["background_ms"] == 250


# Resumed streams


@pytest.mark.parametrize("kind", list(PREFIXES))
async def test_resumed_stream_replays_the_events_after_n(sim: Sim, kind: str) -> None:
    client = sim.client(kind)
    original = await collect(
        await client.responses.create(model="gpt-4o", input="resume this one", stream=True)
    )
    assert numbers(original) == list(range(len(original)))
    response_id = original[0].response.id  # type: ignore[union-attr]

    after_3 = await collect(
        await client.responses.retrieve(response_id, stream=True, starting_after=3)
    )
    assert numbers(after_3) == list(range(4, len(original)))
    assert dumped(after_3) == dumped(original[4:])
    assert after_3[0].type == "response.output_text.delta"
    assert after_3[-1].type == "response.completed"

    everything = await collect(await client.responses.retrieve(response_id, stream=True))
    assert dumped(everything) == dumped(original)
    last = len(original) - 1
    nothing = await collect(
        await client.responses.retrieve(response_id, stream=True, starting_after=last)
    )
    assert nothing == []


async def test_resumed_stream_of_a_background_response_waits_until_it_is_done(sim: Sim) -> None:
    await sim.set_config(background_ms=300)
    client = sim.client()
    started = time.monotonic()
    created = await client.responses.create(model="gpt-4o", input="later", background=True)
    events = await collect(await client.responses.retrieve(created.id, stream=True))
    assert time.monotonic() - started >= 0.3
    assert numbers(events) == list(range(len(events)))
    final = events[-1]
    assert final.type == "response.completed"
    foreground = await client.responses.create(model="gpt-4o", input="later")
    assert final.response.usage is not None and foreground.usage is not None
    assert final.response.usage.model_dump() == foreground.usage.model_dump()
    assert final.response.background is True


async def test_resumed_stream_of_a_cancelled_response_ends_after_its_first_events(
    sim: Sim,
) -> None:
    await sim.set_config(background_ms=60_000)
    client = sim.client()
    created = await client.responses.create(model="gpt-4o", input="stop me", background=True)

    async def resume() -> list[ResponseStreamEvent]:
        return await collect(await client.responses.retrieve(created.id, stream=True))

    waiting = asyncio.create_task(resume())
    await asyncio.sleep(0.05)  # the resumed stream is waiting for the response to finish
    assert not waiting.done()
    await client.responses.cancel(created.id)
    events = await asyncio.wait_for(waiting, timeout=5)
    assert [(e.type, e.sequence_number) for e in events] == [
        ("response.created", 0),
        ("response.in_progress", 1),
    ]
    tail = await collect(await client.responses.retrieve(created.id, stream=True, starting_after=0))
    assert [(e.type, e.sequence_number) for e in tail] == [("response.in_progress", 1)]


async def test_resumed_stream_is_paced_like_a_create(sim: Sim) -> None:
    await sim.set_config(ttft_ms=400, tokens_per_second=40, completion_tokens=8)
    client = sim.client()
    created = await client.responses.create(model="gpt-4o", input="pace me")

    async def timed(starting_after: int) -> tuple[float, list[ResponseStreamEvent]]:
        started = time.monotonic()
        stream = await client.responses.retrieve(
            created.id, stream=True, starting_after=starting_after
        )
        events = await collect(stream)
        return time.monotonic() - started, events

    whole, events = await timed(-1)
    assert whole >= 0.4 + 7 / 40  # time to first token, then 8 tokens at 40 a second
    last_delta = max(e.sequence_number for e in events if e.type == "response.output_text.delta")
    rest, tail = await timed(last_delta)
    assert rest < 0.3  # no time to first token once a token was sent
    assert numbers(tail) == list(range(last_delta + 1, last_delta + 5))
    assert [e.type for e in tail] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]


async def test_resume_checks_its_id_and_starting_after(sim: Sim) -> None:
    created = await sim.client().responses.create(model="gpt-4o", input="x")
    for kind in PREFIXES:
        url = sim.api_url(kind, f"/responses/{created.id}")
        for bad in ("abc", "-2", "1.5", ""):
            status, _, raw = await sim.get(url, stream="true", starting_after=bad)
            assert status == 400, bad
            assert json.loads(raw)["error"]["param"] == "starting_after"
        status, content_type, raw = await sim.get(url, stream="true", starting_after="-1")
        assert (status, content_type) == (200, "text/event-stream")
        assert raw.startswith(b"event: response.created\ndata: ")
        missing_url = sim.api_url(kind, "/responses/resp_missing")
        streamed = await sim.get(missing_url, stream="true")
        assert streamed[0] == 404
        assert streamed[2] == (await sim.get(missing_url))[2]
        assert b"resp_missing" in streamed[2]


async def test_resume_takes_faults_like_its_create(sim: Sim) -> None:
    created = await sim.client().responses.create(model="gpt-4o", input="cut me")
    status, body = await sim.control("POST", "faults", deployment="gpt-4o", reset_after_chunks=2)
    assert status == 200, body
    url = sim.api_url("openai", f"/responses/{created.id}")
    with pytest.raises(aiohttp.ClientPayloadError):
        await sim.get(url, stream="true")
    (record,) = [r for r in await sim.requests() if r["query"].get("stream") == "true"]
    assert (record["operation"], record["stream"], record["chunks_sent"]) == ("stored", True, 2)


# Input token counts


@pytest.mark.parametrize("kind", list(PREFIXES))
async def test_input_tokens_count_is_the_creates_input_tokens(sim: Sim, kind: str) -> None:
    client = sim.client(kind)
    body: dict[str, Any] = {
        "model": "gpt-4o",
        "input": [
            {"role": "user", "content": "count every word here"},
            {"role": "assistant", "content": "fine"},
            {"role": "user", "content": [{"type": "input_text", "text": "and these too"}]},
        ],
        "instructions": "Answer in one line.",
        "tools": TOOLS,
    }
    await sim.control("DELETE", "requests")
    counted = await client.responses.input_tokens.count(**body)
    created = await client.responses.create(**body)
    assert counted.object == "response.input_tokens"
    assert created.usage is not None and counted.input_tokens == created.usage.input_tokens
    # Per message 3 + its role + its words, plus 3: three inputs, then the instructions.
    assert counted.input_tokens == (3 + 1 + 4) + (3 + 1 + 1) + (3 + 1 + 3) + (3 + 1 + 4) + 3

    record = (await sim.requests())[0]
    assert record["path"] == PREFIXES[kind] + "/responses/input_tokens"
    assert (record["operation"], record["status"]) == ("input_tokens", 200)
    assert record["body"]["model"] == "gpt-4o"
    assert ("api-version" in record["query"]) is (kind == "azure")


async def test_input_tokens_wire_shape(sim: Sim) -> None:
    url = sim.api_url("openai", "/responses/input_tokens")
    headers = {"api-key": KEY}  # as on every Responses API path
    async with sim.http.post(url, headers=headers, json={"model": "gpt-4o", "input": "hi"}) as r:
        assert r.status == 200 and r.content_type == "application/json"
        assert await r.json() == {"object": "response.input_tokens", "input_tokens": 8}


async def test_input_tokens_is_checked_like_a_create(sim: Sim) -> None:
    cases: list[tuple[Callable[[], openai.AsyncOpenAI], str, type[Exception]]] = [
        (lambda: openai.AsyncOpenAI(base_url=sim.url + "/v1", api_key="wrong"), "gpt-4o",
         openai.AuthenticationError),
        (sim.client, "gpt-nope", openai.NotFoundError),
        (sim.client, "text-embedding-3-small", openai.BadRequestError),
    ]  # fmt: skip
    for make, model, error in cases:
        with pytest.raises(error):
            await make().responses.input_tokens.count(model=model, input="x")
    with pytest.raises(openai.BadRequestError, match="input"):
        await sim.client().responses.input_tokens.count(model="gpt-4o", input=[])
    async with sim.http.post(
        sim.url + "/openai/responses/input_tokens", headers={"api-key": KEY}, json={}
    ) as resp:
        assert resp.status == 404  # Azure's paths need an api-version

    status, body = await sim.control("POST", "faults", status=429, deployment="gpt-4o")
    assert status == 200, body
    with pytest.raises(openai.RateLimitError):
        await sim.client().responses.input_tokens.count(model="gpt-4o", input="x")
