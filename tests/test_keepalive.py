"""Slow upstreams: streams kept alive with SSE comments, and the total timeout of whole answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import requests
from openai import OpenAI

from tests.conftest import SIM_KEY, Live, new_system
from tests.support.processes import Service, start_gateway


@pytest.fixture(scope="module")
def slow(live: Live, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, str]]:
    work = tmp_path_factory.mktemp("keepalive")
    env = {
        "TOLLGATE_REGISTRY": str(work / "systems.json"),
        "TOLLGATE_SIMULATOR_URL": live.simulator.url,
        "TOLLGATE_SECRET_SIMULATOR_KEY": SIM_KEY,
        "TOLLGATE_SSE_KEEPALIVE_SECONDS": "0.4",
        "TOLLGATE_UPSTREAM_TOTAL_TIMEOUT": "1",
    }
    key = new_system(env, "app")
    gateway = start_gateway(env, Path(work / "gateway.log"))
    try:
        yield gateway, key
    finally:
        gateway.stop()


def test_a_slow_stream_is_kept_alive_then_relayed(live: Live, slow: tuple[Service, str]) -> None:
    gateway, key = slow
    live.sim("POST", "faults", {"delay_ms": 1500, "deployment": "gpt-4-turbo", "count": 1})
    body: Any = {"messages": [{"role": "user", "content": "slowly"}], "stream": True}
    url = f"{gateway.url}/gateway/chat/completions/gpt-4-turbo"
    with requests.post(url, headers={"api-key": key}, json=body, stream=True, timeout=30) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in r.iter_lines() if line]
    assert lines[-1].startswith(b": x-tollgate-cost ")  # the closing comment: what it cost
    lines = lines[:-1]
    comments = [line for line in lines if line.startswith(b":")]
    assert len(comments) >= 2 and lines[: len(comments)] == comments  # comments first
    assert lines[-1] == b"data: [DONE]" and any(b'"content":"Echo:' in line for line in lines)


def test_an_upstream_error_after_keep_alives_is_an_sse_error(
    live: Live, slow: tuple[Service, str]
) -> None:
    gateway, key = slow
    fault = {"delay_ms": 1200, "status": 500, "deployment": "gpt-4-turbo", "count": 1}
    live.sim("POST", "faults", fault)
    client = OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0)
    stream = client.chat.completions.create(
        model="gpt-4-turbo", messages=[{"role": "user", "content": "x"}], stream=True
    )
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass


def test_a_whole_answer_past_the_total_timeout_is_a_504(
    live: Live, slow: tuple[Service, str]
) -> None:
    gateway, key = slow
    live.sim("POST", "faults", {"delay_ms": 2000, "deployment": "gpt-35-turbo", "count": 1})
    url = f"{gateway.url}/gateway/chat/completions/gpt-35-turbo"
    body = {"messages": [{"role": "user", "content": "x"}]}
    response = requests.post(url, headers={"api-key": key}, json=body, timeout=30)
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "upstream_timeout"
