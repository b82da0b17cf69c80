"""The probe's time to first content token: spotting the token in a stream's bytes, and timing
it against the simulator, directly and through the gateway."""

from __future__ import annotations

import json
from collections.abc import Iterator

import aiohttp
import pytest

from shared.probe.first_token import FirstContent, carries_content
from shared.probe.measure import Target, gateway_target, measure
from tests.conftest import SIM_KEY, Live

ROLE = b'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n'
PROMPT_FILTER = b'data: {"choices":[],"prompt_filter_results":[{"prompt_index":0}]}\n\n'
TOKEN = b'data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n'


def event(delta: object) -> bytes:
    return b"data: " + json.dumps({"choices": [{"index": 0, "delta": delta}]}).encode()


@pytest.mark.parametrize(
    ("line", "content"),
    [
        (TOKEN.strip(), True),
        (b'data:{"choices":[{"delta":{"content":" "}}]}', True),  # no space after the colon
        (TOKEN.strip() + b"\r", True),  # CRLF line ends
        (ROLE.strip(), False),  # role only, "content": ""
        (PROMPT_FILTER.strip(), False),  # Azure's first chunk: no choices
        (event({"content": None, "tool_calls": []}), False),
        (event({}), False),  # a finish chunk
        (b'data: {"choices":[],"usage":{"total_tokens":3}}', False),
        (b"data: [DONE]", False),
        (b": keep-alive", False),
        (b"data: ", False),
        (b"data: not json", False),
        (b"data: [1, 2]", False),
        (b'event: message\ndata: {"choices": "text"}', False),
        (b'{"choices":[{"delta":{"content":"Hi"}}]}', False),  # not an SSE data line
    ],
)
def test_what_counts_as_a_content_token(line: bytes, content: bool) -> None:
    assert carries_content(line) is content


def split_every(data: bytes, size: int) -> Iterator[bytes]:
    return (data[i : i + size] for i in range(0, len(data), size))


@pytest.mark.parametrize("size", [1, 7, 64, 10_000])
def test_the_first_token_is_seen_with_the_chunk_that_completes_it(size: int) -> None:
    before = PROMPT_FILTER + b": keep-alive\n\n" + ROLE + b"data: \n\n"
    stream = before + TOKEN + TOKEN + b"data: [DONE]\n\n"
    first = FirstContent()
    seen_at = next(
        (end for end, chunk in ends(split_every(stream, size)) if first.feed(chunk)), None
    )
    assert seen_at is not None
    completes = len(before) + len(TOKEN.rstrip(b"\n")) + 1  # up to the token's newline
    assert seen_at == min(-(-completes // size) * size, len(stream))
    assert first.feed(b"anything") is True  # stays seen


def ends(chunks: Iterator[bytes]) -> Iterator[tuple[int, bytes]]:
    """Each chunk with how many bytes were fed once it is."""
    fed = 0
    for chunk in chunks:
        fed += len(chunk)
        yield fed, chunk


def test_a_stream_without_content_never_counts() -> None:
    first = FirstContent()
    assert not any(first.feed(chunk) for chunk in (PROMPT_FILTER, ROLE, b"data: [DONE]\n\n"))


SIM_TTFT_MS = 300.0


@pytest.fixture
def slow_first_token(live: Live) -> Iterator[None]:
    """The simulator sends its role chunk at once and its first token SIM_TTFT_MS later."""
    before = live.sim("GET", "config").json()["ttft_ms"]
    live.sim("POST", "config", {"ttft_ms": SIM_TTFT_MS})
    try:
        yield
    finally:
        live.sim("POST", "config", {"ttft_ms": before})


def azure_target(live: Live) -> Target:
    """The simulator as an Azure deployment: a prompt-filter chunk, then the role chunk."""
    url = f"{live.simulator.url}/openai/deployments/gpt-4o/chat/completions"
    headers = {"content-type": "application/json", "api-key": SIM_KEY}
    return Target("gpt-4o", "direct", url + "?api-version=2024-10-21", headers, None, "sim")


@pytest.mark.usefixtures("slow_first_token")
async def test_first_token_is_timed_after_the_first_byte(live: Live) -> None:
    targets = [azure_target(live), gateway_target("gpt-4o", live.url, live.seed_key)]
    async with aiohttp.ClientSession() as session:
        for target in targets:
            row = await measure(session, target, stream=True)
            assert row.ok, row
            assert row.ttft_ms is not None and row.ttft_ms >= SIM_TTFT_MS  # held back so long
            assert row.ttfb_ms < row.ttft_ms <= row.total_ms  # the role chunk came first
            whole = await measure(session, target, stream=False)
            assert whole.ok and whole.ttft_ms is None  # not streamed: no token to time
