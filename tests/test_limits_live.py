"""Limits across three live gateway processes sharing one real Redis (127.0.0.1:6379)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from tests.conftest import SIM_KEY
from tests.support.cluster import Cluster, cluster_of, day_used, post, spread, tpm_used

CHAT: dict[str, Any] = {
    "messages": [{"role": "user", "content": "count my tokens"}],
    "max_tokens": 16,
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with cluster_of(tmp_path_factory.mktemp("limits"), 3) as running:
        yield running


async def test_sixty_a_minute_across_three_instances(cluster: Cluster) -> None:
    _, key = cluster.system(rpm=60)
    results = await spread(cluster, key, 200, "/gateway/chat/completions/gpt-4o", CHAT)
    statuses = [status for status, _, _ in results]
    assert statuses.count(200) == 60 and statuses.count(429) == 140
    for status, headers, body in results:
        if status == 429:
            assert 1 <= int(headers["retry-after"]) <= 60
            assert b'"rate_limit_exceeded"' in body
    ok_headers = [h for s, h, _ in results if s == 200]
    assert {h["x-ratelimit-limit-requests"] for h in ok_headers} == {"60"}
    assert sorted(int(h["x-ratelimit-remaining-requests"]) for h in ok_headers) == list(range(60))


async def _settled(system: str, expected: int) -> int:
    deadline = time.monotonic() + 5  # settlement runs just after each response
    while (used := day_used(system)) != expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return used


async def _usage_of_one_request(cluster: Cluster) -> int:
    """What the simulator reports for CHAT (it is deterministic)."""
    async with aiohttp.ClientSession() as session:
        status, _, body = await post(
            session,
            cluster.simulator.url,
            SIM_KEY,
            "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
            CHAT,
        )
    assert status == 200
    import json

    return int(json.loads(body)["usage"]["total_tokens"])


async def test_daily_quota_holds_and_settles_to_the_upstreams_usage(cluster: Cluster) -> None:
    per_request = await _usage_of_one_request(cluster)
    quota = per_request * 10 + per_request // 2
    system, key = cluster.system(tokens_per_day=quota)
    plain = ("/gateway/chat/completions/gpt-4o", CHAT)
    streamed = ("/v1/chat/completions", {**CHAT, "model": "gpt-4o", "stream": True})
    results = await asyncio.gather(
        spread(cluster, key, 12, *plain), spread(cluster, key, 12, *streamed)
    )
    flat = results[0] + results[1]
    admitted = sum(status == 200 for status, _, _ in flat)
    refused = [body for status, _, body in flat if status == 429]
    assert admitted + len(refused) == 24 and all(b'"quota_exceeded"' in b for b in refused)
    assert 1 <= admitted <= 10  # reservations hold back tokens not yet known to be unused
    used = await _settled(system, admitted * per_request)
    assert used == admitted * per_request <= quota
    for status, _, body in results[1]:
        if status == 200:  # the client did not ask for usage: the extra chunk is not shown
            assert b'"usage":{' not in body and body.rstrip().split(b"\n\n")[-2] == b"data: [DONE]"


async def test_streamed_usage_the_client_asked_for_is_kept(cluster: Cluster) -> None:
    _, key = cluster.system(tpm=100_000)
    body = {**CHAT, "model": "gpt-4o", "stream": True, "stream_options": {"include_usage": True}}
    ((status, headers, raw),) = await spread(cluster, key, 1, "/v1/chat/completions", body)
    assert status == 200 and raw.count(b'"usage":{') == 1
    assert int(headers["x-ratelimit-remaining-tokens"]) < 100_000


async def test_limits_apply_on_every_route(cluster: Cluster) -> None:
    _, key = cluster.system(rpm=4)
    routes: list[tuple[str, dict[str, Any]]] = [
        ("/gateway/chat/completions/gpt-4o", CHAT),
        ("/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21", CHAT),
        ("/v1/chat/completions", {**CHAT, "model": "gpt-4o"}),
        ("/v1/embeddings", {"model": "text-embedding-3-small", "input": "hi"}),
        ("/gateway/embeddings/text-embedding-3-small", {"input": "hi"}),
    ]
    statuses = [(await spread(cluster, key, 1, path, body))[0][0] for path, body in routes]
    assert statuses == [200, 200, 200, 200, 429]


async def test_concurrency_cap(cluster: Cluster) -> None:
    _, key = cluster.system(concurrency=3)
    slow = {**CHAT, "stream": True}
    cluster_sim = cluster.simulator.url
    async with aiohttp.ClientSession() as s:
        await s.post(f"{cluster_sim}/_sim/config", json={"latency_ms": 800})
    try:
        results = await spread(cluster, key, 8, "/gateway/chat/completions/gpt-4o", slow)
    finally:
        async with aiohttp.ClientSession() as s:
            await s.post(f"{cluster_sim}/_sim/config", json={"latency_ms": 0})
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [200] * 3 + [429] * 5
    assert all(b"concurrency_limit_exceeded" in b for st, _, b in results if st == 429)
    # The leases were returned: three more fit now.
    again = await spread(cluster, key, 3, "/gateway/chat/completions/gpt-4o", CHAT)
    assert [status for status, _, _ in again] == [200] * 3


async def test_disconnect_mid_stream_settles_what_was_delivered(cluster: Cluster) -> None:
    per_request = await _usage_of_one_request(cluster)
    system, key = cluster.system(tokens_per_day=1_000_000)
    async with aiohttp.ClientSession() as s:
        await s.post(f"{cluster.simulator.url}/_sim/config", json={"tokens_per_second": 10})
        try:
            url = f"{cluster.gateways[0].url}/gateway/chat/completions/gpt-4o"
            body = {**CHAT, "stream": True, "max_tokens": 500}
            async with s.post(url, headers={"api-key": key}, json=body) as resp:
                assert resp.status == 200
                await resp.content.readline()  # the first event, then hang up
        finally:
            await s.post(f"{cluster.simulator.url}/_sim/config", json={"tokens_per_second": 0})
    deadline = time.monotonic() + 5
    while (used := day_used(system)) > 400 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)  # reserved: prompt + 500; settled: prompt + delivered
    assert 0 < used < per_request + 10


async def test_tokens_per_minute_hold_and_settle_exactly(cluster: Cluster) -> None:
    per_request = await _usage_of_one_request(cluster)
    limit = per_request * 8
    system, key = cluster.system(tpm=limit)
    streamed = {**CHAT, "model": "gpt-4o", "stream": True}
    results = await asyncio.gather(
        spread(cluster, key, 10, "/gateway/chat/completions/gpt-4o", CHAT),
        spread(cluster, key, 10, "/v1/chat/completions", streamed),
    )
    flat = results[0] + results[1]
    admitted = sum(status == 200 for status, _, _ in flat)
    assert 1 <= admitted <= 8
    refusals = [(h, b) for s, h, b in flat if s == 429]
    assert all(b'"type": "tokens"' in b and 1 <= int(h["retry-after"]) <= 60 for h, b in refusals)
    deadline = time.monotonic() + 5
    while tpm_used(system) != admitted * per_request and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert tpm_used(system) == admitted * per_request <= limit
