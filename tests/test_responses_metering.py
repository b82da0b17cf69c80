"""The Responses API metered across two live gateways sharing one real Redis: streamed and
non-streamed responses settle exactly to the upstream's usage, tokens per minute refuse, a
client's hang-up is settled, ownership holds on either gateway, and background responses are
settled when they end (seen by the client's polling on either gateway, by the gateway's own
check, or by a cancel), never leaking their reservation."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
import requests
from openai import OpenAI

from tests.conftest import SIM_KEY
from tests.support.cluster import Cluster, cluster_of, day_used, post, spread, tpm_used

BODY: dict[str, Any] = {"model": "gpt-4o", "input": "count my tokens", "max_output_tokens": 16}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with cluster_of(tmp_path_factory.mktemp("responses-metering"), 2) as running:
        yield running


@pytest.fixture
def background(cluster: Cluster) -> Iterator[Cluster]:
    """Background responses finish 0.8 s after they are created."""
    cluster.sim_config(background_ms=800)
    try:
        yield cluster
    finally:
        cluster.sim_config(background_ms=0, tokens_per_second=0)


def sdk(cluster: Cluster, key: str, gateway: int) -> OpenAI:
    return OpenAI(base_url=f"{cluster.gateways[gateway].url}/v1", api_key=key, max_retries=0)


def usage_of(status: int, raw: bytes) -> int:
    """The total tokens of an answer: a JSON response, or a stream's terminal event."""
    assert status == 200, raw
    if raw.startswith(b"event:"):
        events = [e for e in raw.strip().split(b"\n\n") if not e.startswith(b":")]
        last = events[-1]  # the terminal event, before the closing cost comment
        data = json.loads(last.split(b"data: ", 1)[1])
        assert data["type"] == "response.completed"
        return int(data["response"]["usage"]["total_tokens"])
    return int(json.loads(raw)["usage"]["total_tokens"])


def records_of(cluster: Cluster, system: str) -> list[dict[str, Any]]:
    """The system's records of calls that created a response (they reserve tokens; model
    lists and calls on stored responses reserve none)."""
    paths = (cluster.work / "usage").rglob("*.jsonl")
    lines = [line for path in paths for line in path.read_text().splitlines()]
    records = map(json.loads, lines)
    return [r for r in records if r["system"] == system and r["reserved_tokens"] > 0]


def wait_for(check: Any, seconds: float = 10) -> Any:
    deadline = time.monotonic() + seconds
    while not (value := check()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return value


async def test_streamed_and_not_settle_exactly_across_two_gateways(cluster: Cluster) -> None:
    system, key = cluster.system(tokens_per_day=1_000_000)
    plain = spread(cluster, key, 8, "/v1/responses", BODY)
    streamed = spread(cluster, key, 8, "/openai/v1/responses", {**BODY, "stream": True})
    results = [r for batch in await asyncio.gather(plain, streamed) for r in batch]
    spent = sum(usage_of(status, raw) for status, _, raw in results)
    assert wait_for(lambda: day_used(system) == spent), (day_used(system), spent)
    records = wait_for(lambda: len(found := records_of(cluster, system)) == 16 and found) or []
    assert len(records) == 16
    assert sum(r["settled_tokens"] for r in records) == spent
    assert all(r["settled_tokens"] == r["total_tokens"] > 0 for r in records)
    assert {r["operation"] for r in records} == {"responses"}


async def test_tokens_per_minute_refuse_responses_and_settle_exactly(cluster: Cluster) -> None:
    async with aiohttp.ClientSession() as session:
        direct = await post(session, cluster.simulator.url, SIM_KEY, "/v1/responses", BODY)
    per_request = usage_of(direct[0], direct[2])
    system, key = cluster.system(tpm=per_request * 4)
    results = await spread(cluster, key, 10, "/v1/responses", BODY)
    admitted = sum(status == 200 for status, _, _ in results)
    assert 1 <= admitted <= 4
    for status, headers, raw in results:
        if status == 429:
            assert json.loads(raw)["error"]["type"] == "tokens"
            assert 1 <= int(headers["retry-after"]) <= 60
    assert wait_for(lambda: tpm_used(system) == admitted * per_request)


async def test_a_hang_up_mid_stream_is_settled_on_what_was_delivered(cluster: Cluster) -> None:
    system, key = cluster.system(tokens_per_day=1_000_000)
    cluster.sim_config(tokens_per_second=10)
    try:
        async with aiohttp.ClientSession() as session:
            url = f"{cluster.gateways[1].url}/v1/responses"
            body = {**BODY, "stream": True, "max_output_tokens": 500}
            async with session.post(url, headers={"api-key": key}, json=body) as resp:
                assert resp.status == 200
                await resp.content.readline()  # the first event's first line, then hang up
    finally:
        cluster.sim_config(tokens_per_second=0)
    # Reserved: the prompt and 500; settled: the prompt and the little that was delivered.
    assert wait_for(lambda: 0 < day_used(system) < 100), day_used(system)
    (record,) = wait_for(lambda: records_of(cluster, system))
    assert record["client_disconnected"] is True and record["settled_tokens"] == day_used(system)


def test_ownership_and_chains_hold_on_either_gateway(cluster: Cluster) -> None:
    _, key = cluster.system()
    _, other = cluster.system()
    first = sdk(cluster, key, 0).responses.create(**BODY)
    follow = sdk(cluster, key, 1).responses.create(**BODY, previous_response_id=first.id)
    assert follow.status == "completed"
    assert sdk(cluster, key, 1).responses.retrieve(first.id).id == first.id
    for gateway in cluster.gateways:
        answer = requests.get(
            f"{gateway.url}/v1/responses/{first.id}", headers={"api-key": other}, timeout=30
        )
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == "response_not_found"


def test_a_background_response_is_settled_when_its_client_polls_the_other_gateway(
    background: Cluster,
) -> None:
    system, key = background.system(tokens_per_day=1_000_000, concurrency=1)
    created = sdk(background, key, 0).responses.create(**BODY, background=True)
    assert created.status == "queued" and created.usage is None
    reserved = day_used(system)
    assert reserved > 0  # held: the prompt estimate and max_output_tokens
    # Its concurrency lease ended with the create call: another call is admitted at once.
    assert sdk(background, key, 1).responses.input_tokens.count(model="gpt-4o", input="x")
    deadline = time.monotonic() + 10
    while (polled := sdk(background, key, 1).responses.retrieve(created.id)).status != "completed":
        assert time.monotonic() < deadline, polled.status
        time.sleep(0.2)
    assert polled.usage is not None
    spent = polled.usage.total_tokens
    assert wait_for(lambda: day_used(system) == spent), (day_used(system), spent)
    (record,) = wait_for(lambda: records_of(background, system))
    assert record["response_id"] == created.id and record["error_code"] == ""
    assert (record["prompt_tokens"], record["completion_tokens"]) == (
        polled.usage.input_tokens,
        polled.usage.output_tokens,
    )
    assert record["settled_tokens"] == spent and record["reserved_tokens"] == reserved


def test_a_background_response_nobody_polls_is_settled_by_the_gateway(
    background: Cluster,
) -> None:
    system, key = background.system(tokens_per_day=1_000_000)
    created = sdk(background, key, 1).responses.create(**BODY, background=True)
    # Nobody asks: the gateway's own check (first after about 2 s) sees it end, and only then
    # writes the record.
    (record,) = wait_for(lambda: records_of(background, system), seconds=15) or [None]
    assert record is not None and record["response_id"] == created.id
    ended = sdk(background, key, 0).responses.retrieve(created.id)
    assert ended.usage is not None and record["total_tokens"] == ended.usage.total_tokens
    assert day_used(system) == ended.usage.total_tokens


def test_a_cancelled_background_response_is_settled_on_its_usage(background: Cluster) -> None:
    background.sim_config(background_ms=60_000)
    system, key = background.system(tokens_per_day=1_000_000)
    created = sdk(background, key, 0).responses.create(**BODY, background=True)
    cancelled = sdk(background, key, 1).responses.cancel(created.id)
    assert cancelled.status == "cancelled" and cancelled.usage is not None
    spent = cancelled.usage.total_tokens
    assert wait_for(lambda: day_used(system) == spent), (day_used(system), spent)
    (record,) = wait_for(lambda: records_of(background, system))
    assert record["error_code"] == "response_cancelled" and record["total_tokens"] == spent
