"""Pools across simulator instances with faults injected: failover, cooldowns, weights, breakers."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import requests

from tests.conftest import SIM_KEY, new_system
from tests.support.processes import Service, free_port, start_gateway, start_simulator

CHAT: dict[str, Any] = {"messages": [{"role": "user", "content": "hello"}], "max_tokens": 8}
RUN = uuid.uuid4().hex[:6]  # health lives in the shared Redis: names unique to this run


def upstream(name: str, sim: str, deployment: str) -> tuple[str, dict[str, str]]:
    spec = {"type": "azure", "endpoint": sim, "deployment": deployment, "key_secret": "sim"}
    return f"{name}-{RUN}", spec


@dataclass
class Rig:
    gateways: list[Service]
    a: Service
    b: Service
    key: str

    def chat(self, model: str, gateway: int = 0, **extra: Any) -> requests.Response:
        url = f"{self.gateways[gateway].url}/gateway/chat/completions/{model}"
        return requests.post(url, headers={"api-key": self.key}, json={**CHAT, **extra}, timeout=30)

    def fault(self, sim: Service, **fault: Any) -> None:
        requests.post(f"{sim.url}/_sim/faults", json=fault, timeout=5).raise_for_status()

    def seen(self, sim: Service, deployment: str) -> int:
        records = requests.get(f"{sim.url}/_sim/requests", timeout=5).json()["requests"]
        return sum(deployment in r["path"] for r in records)


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    work = tmp_path_factory.mktemp("failover")
    a, b = (start_simulator(SIM_KEY, work / f"sim-{n}.log") for n in "ab")
    dead = f"http://127.0.0.1:{free_port()}"
    ups = dict(
        [
            upstream("a-cool", a.url, "gpt-4o"),
            upstream("b-cool", b.url, "gpt-4o"),
            upstream("a-err", a.url, "gpt-4-turbo"),
            upstream("b-err", b.url, "gpt-4-turbo"),
            upstream("a-mid", a.url, "gpt-35-turbo"),
            upstream("b-mid", b.url, "gpt-35-turbo"),
            upstream("a-w", a.url, "gpt-35-turbo-16k"),
            upstream("b-w", b.url, "gpt-35-turbo-16k"),
            upstream("a-brk", a.url, "gpt-35-turbo-0613"),
            upstream("b-brk", b.url, "gpt-35-turbo-0613"),
            upstream("dead", dead, "gpt-4o"),
            upstream("b-alt", b.url, "gpt-4o"),
        ]
    )

    def pool(first: str, second: str, weights: tuple[int, int] | None = None) -> dict[str, Any]:
        if weights:
            members = [
                {"upstream": f"{first}-{RUN}", "weight": weights[0]},
                {"upstream": f"{second}-{RUN}", "weight": weights[1]},
            ]
        else:
            members = [
                {"upstream": f"{first}-{RUN}", "priority": 1},
                {"upstream": f"{second}-{RUN}", "priority": 2},
            ]
        return {"upstreams": members}

    config = {
        "upstreams": ups,
        "models": {
            "cool": pool("a-cool", "b-cool"),
            "err": pool("a-err", "b-err"),
            "mid": pool("a-mid", "b-mid"),
            "weighted": pool("a-w", "b-w", (2, 1)),
            "breaker": pool("a-brk", "b-brk"),
            "dead-first": pool("dead", "b-alt"),
        },
    }
    env = {
        "TOLLGATE_REGISTRY": str(work / "systems.json"),
        "TOLLGATE_CONFIG_JSON": json.dumps(config),
        "TOLLGATE_SECRET_SIM": SIM_KEY,
        "TOLLGATE_REDIS_URL": "redis://127.0.0.1:6379/0",
        "TOLLGATE_UPSTREAM_READ_TIMEOUT": "1",
        "TOLLGATE_UPSTREAM_FIRST_BYTE_TIMEOUT": "1",  # the "timeout" case below
        "TOLLGATE_BREAKER_FAILURES": "3",
        "TOLLGATE_BREAKER_OPEN_SECONDS": "2",
    }
    key = new_system(env, "app", limits={"rpm": 100000})
    gateways = [start_gateway(env, Path(work / f"gw{i}.log")) for i in range(2)]
    try:
        yield Rig(gateways, a, b, key)
    finally:
        for service in (*gateways, a, b):
            service.stop()


def served_by(response: requests.Response) -> str:
    return response.headers["x-tollgate-upstream"].removesuffix(f"-{RUN}")


def test_429_cools_a_deployment_down_then_it_returns(rig: Rig) -> None:
    rig.fault(rig.a, status=429, retry_after=2, deployment="gpt-4o", count=1)
    first = rig.chat("cool")
    assert first.status_code == 200 and served_by(first) == "b-cool"
    before = rig.seen(rig.a, "gpt-4o")
    assert {served_by(rig.chat("cool", gateway=i % 2)) for i in range(6)} == {"b-cool"}
    assert rig.seen(rig.a, "gpt-4o") == before  # no traffic while it cools down
    time.sleep(2.3)
    assert served_by(rig.chat("cool")) == "a-cool"


@pytest.mark.parametrize(
    "fault",
    [{"status": 500}, {"status": 503}, {"reset_after_chunks": 0}, {"delay_ms": 2500}],
    ids=["500", "503", "reset", "timeout"],
)
def test_errors_before_the_first_byte_fail_over_once(rig: Rig, fault: dict[str, Any]) -> None:
    remaining = int(rig.chat("err").headers["x-ratelimit-remaining-requests"])
    rig.fault(rig.a, deployment="gpt-4-turbo", count=1, **fault)
    response = rig.chat("err")
    assert response.status_code == 200 and served_by(response) == "b-err"
    assert response.json()["object"] == "chat.completion"
    assert int(response.headers["x-ratelimit-remaining-requests"]) == remaining - 1  # charged once


def test_reset_mid_stream_is_not_retried(rig: Rig) -> None:
    rig.fault(rig.a, deployment="gpt-35-turbo", count=1, reset_after_chunks=3)
    before_b = rig.seen(rig.b, "gpt-35-turbo")
    response = rig.chat("mid", stream=True)
    assert response.status_code == 200 and served_by(response) == "a-mid"
    assert b'"stream_interrupted"' in response.content and b"[DONE]" not in response.content
    assert rig.seen(rig.b, "gpt-35-turbo") == before_b


def test_content_filter_400_passes_through_without_failover(rig: Rig) -> None:
    body = {
        "error": {
            "message": "The response was filtered due to the prompt triggering Azure "
            "OpenAI's content management policy.",
            "type": None,
            "param": "prompt",
            "code": "content_filter",
            "status": 400,
        }
    }
    rig.fault(rig.a, deployment="gpt-4o", count=1, status=400, body=body)
    before_b = rig.seen(rig.b, "gpt-4o")
    response = rig.chat("cool")
    assert response.status_code == 400 and response.json() == body
    assert rig.seen(rig.b, "gpt-4o") == before_b


async def test_weights_split_traffic_two_to_one(rig: Rig) -> None:
    url = f"{rig.gateways[0].url}/gateway/chat/completions/weighted"
    counts: Counter[str] = Counter()
    gate = asyncio.Semaphore(32)

    async def one(session: aiohttp.ClientSession) -> None:
        async with gate, session.post(url, headers={"api-key": rig.key}, json=CHAT) as resp:
            assert resp.status == 200
            counts[resp.headers["x-tollgate-upstream"].removesuffix(f"-{RUN}")] += 1
            await resp.read()

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        await asyncio.gather(*(one(session) for _ in range(3000)))
    share = counts["a-w"] / 3000
    assert abs(share - 2 / 3) <= 0.05 * (2 / 3), counts


def test_breaker_opens_half_opens_and_closes_shared_across_instances(rig: Rig) -> None:
    rig.fault(rig.a, deployment="gpt-35-turbo-0613", count=3, status=500)
    for _ in range(3):  # three failures open the breaker (each request still succeeds on b)
        assert served_by(rig.chat("breaker")) == "b-brk"
    tried_a = rig.seen(rig.a, "gpt-35-turbo-0613")
    time.sleep(1.1)  # the other instance's cached view expires; it must read the shared state
    assert served_by(rig.chat("breaker", gateway=1)) == "b-brk"
    assert served_by(rig.chat("breaker", gateway=0)) == "b-brk"
    assert rig.seen(rig.a, "gpt-35-turbo-0613") == tried_a  # open: not even probed
    time.sleep(2.2)  # half-open: one trial, which succeeds, and the breaker closes
    assert served_by(rig.chat("breaker", gateway=1)) == "a-brk"
    time.sleep(1.1)
    assert served_by(rig.chat("breaker", gateway=0)) == "a-brk"


def test_a_pool_rate_limited_upstream_answers_429_with_retry_after(rig: Rig) -> None:
    rig.fault(rig.a, status=429, retry_after=3, deployment="gpt-4o", count=1)
    rig.fault(rig.b, status=429, retry_after=5, deployment="gpt-4o", count=1)
    relayed = rig.chat("cool")  # both tried: the last upstream 429 comes back as it came
    assert relayed.status_code == 429 and relayed.headers["retry-after"] == "5"
    cooling = rig.chat("cool")  # both cooling down: no upstream call, the gateway's own 429
    assert cooling.status_code == 429
    assert cooling.json()["error"]["code"] == "upstream_rate_limited"
    assert 2 <= int(cooling.headers["retry-after"]) <= 3  # the earliest cooldown
    time.sleep(3.2)
    assert rig.chat("cool").status_code == 200


def test_dead_deployment_is_skipped_after_the_breaker_opens(rig: Rig) -> None:
    for _ in range(4):
        response = rig.chat("dead-first")
        assert response.status_code == 200 and served_by(response) == "b-alt"
    log = rig.gateways[0].log_text()
    assert f"circuit open for dead-{RUN}" in log
    assert log.count(f"failover path=b-alt-{RUN},dead-{RUN}") == 3  # the 4th went straight to b
