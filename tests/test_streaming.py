"""Streams are relayed as they arrive, and upstream trouble reaches the client faithfully."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
import requests
from openai import OpenAI

from tests.conftest import Live

CHAT: Any = {"messages": [{"role": "user", "content": "stream please"}], "stream": True}


@pytest.fixture
def paced(live: Live) -> Iterator[Live]:
    """The simulator sends 16 tokens at 20 per second: a stream lasts about 0.8 s."""
    live.sim("DELETE", "requests")
    live.sim("POST", "config", {"tokens_per_second": 20, "completion_tokens": 16})
    try:
        yield live
    finally:
        live.sim("POST", "config", {"tokens_per_second": 0})
        live.sim("DELETE", "faults")


@pytest.fixture
def clean(live: Live) -> Iterator[Live]:
    live.sim("DELETE", "requests")
    yield live
    live.sim("DELETE", "faults")


def _wait_for_record(live: Live, predicate: str) -> dict[str, object]:
    deadline = time.monotonic() + 5
    while True:
        records = live.sim_requests()
        if (records and records[-1].get(predicate)) or time.monotonic() > deadline:
            return records[-1]
        time.sleep(0.05)


def test_client_gets_the_first_chunk_before_the_upstream_sends_the_last(paced: Live) -> None:
    """If the gateway buffered, the simulator would finish before the client saw a byte, and
    the client's early disconnect could not reach it. It does: so streaming is live, and a
    disconnect cancels the upstream request."""
    url = f"{paced.url}/gateway/chat/completions/gpt-4o"
    with requests.post(
        url, headers={"api-key": paced.seed_key}, json=CHAT, stream=True, timeout=30
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["x-request-id"]
        first = next(r.iter_lines())
        assert first.startswith(b"data: ")
    record = _wait_for_record(paced, "client_disconnected")
    assert record["client_disconnected"] is True


def test_stream_ends_with_done_and_carries_every_token(paced: Live) -> None:
    url = f"{paced.url}/v1/chat/completions"
    body = {**CHAT, "model": "gpt-35-turbo"}
    with requests.post(
        url, headers={"api-key": paced.seed_key}, json=body, stream=True, timeout=30
    ) as r:
        # SSE comments (the closing cost) are not events: clients skip them
        events = [line for line in r.iter_lines() if line and not line.startswith(b":")]
    assert events[-1] == b"data: [DONE]"
    chunks = [json.loads(e.removeprefix(b"data: ")) for e in events[:-1]]
    assert sum(1 for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")) == 16
    assert _wait_for_record(paced, "status")["client_disconnected"] is False


def test_stream_broken_upstream_raises_in_the_sdk(paced: Live) -> None:
    # Paced, so the chunks before the reset reach the gateway before the reset does.
    clean = paced
    clean.sim("POST", "faults", {"reset_after_chunks": 3, "count": 1})
    client = OpenAI(base_url=f"{clean.url}/v1", api_key=clean.seed_key, max_retries=0)
    stream = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "x"}], stream=True
    )
    received = 0
    with pytest.raises(openai.APIError, match="interrupted"):
        for _ in stream:
            received += 1
    assert received >= 1


def test_upstream_500_passes_through(clean: Live) -> None:
    clean.sim("POST", "faults", {"status": 500, "count": 1})
    r = requests.post(
        f"{clean.url}/gateway/chat/completions/gpt-4o",
        headers={"api-key": clean.seed_key},
        json={"messages": [{"role": "user", "content": "x"}]},
        timeout=30,
    )
    assert r.status_code == 500
    assert "error" in r.json()
