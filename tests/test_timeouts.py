"""Each upstream timeout governs only its own phase, and keep-alives keep their schedule:
the read timeout is silence between chunks (never the wait for a slow first answer), the first
SSE keep-alive comes at the setting, and a stalled stream is an `upstream_timeout`, not a reset.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.support.rig import Rig, gateway_rig

READ_TIMEOUT = 0.6
KEEPALIVE = 1.0


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    settings = {
        "TOLLGATE_UPSTREAM_READ_TIMEOUT": str(READ_TIMEOUT),
        "TOLLGATE_UPSTREAM_FIRST_BYTE_TIMEOUT": "10",
        "TOLLGATE_SSE_KEEPALIVE_SECONDS": str(KEEPALIVE),
        "TOLLGATE_MAX_ATTEMPTS": "1",
        "TOLLGATE_BREAKER_FAILURES": "1000",
    }
    with gateway_rig(tmp_path_factory.mktemp("timeouts"), settings) as rig:
        yield rig


def record_of(rig: Rig, response: requests.Response) -> dict[str, Any]:
    request_id = response.headers["x-request-id"]
    return rig.wait_for_record(lambda record: record["request_id"] == request_id)


def test_the_read_timeout_does_not_cut_a_slow_first_answer(rig: Rig) -> None:
    rig.fault(delay_ms=READ_TIMEOUT * 1000 * 2.5, deployment="gpt-4o")  # within the first byte's
    response = rig.chat("gpt-4o")
    assert response.status_code == 200, response.text
    assert response.json()["object"] == "chat.completion"


def test_keep_alives_come_at_the_setting_from_the_first(rig: Rig) -> None:
    # Silent for 2.6 intervals: comments at 1 and 2 intervals (at 2 and only 2 when the first
    # one waited two intervals), then the answer.
    rig.fault(delay_ms=KEEPALIVE * 1000 * 2.6, deployment="gpt-4-turbo")
    url = f"{rig.gateway.url}/gateway/chat/completions/gpt-4-turbo"
    body: dict[str, Any] = {"messages": [{"role": "user", "content": "hi"}], "stream": True}
    with requests.post(url, headers={"api-key": rig.key}, json=body, stream=True, timeout=30) as r:
        lines = [line for line in r.iter_lines() if line]
    assert lines[-1].startswith(b": x-tollgate-cost ")  # the closing comment: what it cost
    lines = lines[:-1]
    comments = [line for line in lines if line.startswith(b":")]
    assert len(comments) == 2, lines[:4]
    assert lines[:2] == comments and lines[-1] == b"data: [DONE]"


def test_a_stalled_stream_is_an_upstream_timeout_and_a_reset_is_not(rig: Rig) -> None:
    rig.fault(stall_after_chunks=3, stall_ms=READ_TIMEOUT * 1000 * 4, deployment="gpt-35-turbo")
    stalled = rig.chat("gpt-35-turbo", stream=True)
    assert stalled.status_code == 200
    assert b'"code": "upstream_timeout"' in stalled.content and b"[DONE]" not in stalled.content
    assert record_of(rig, stalled)["error_code"] == "upstream_timeout"

    rig.fault(reset_after_chunks=3, deployment="gpt-35-turbo")
    reset = rig.chat("gpt-35-turbo", stream=True)
    assert b'"code": "stream_interrupted"' in reset.content
    assert record_of(rig, reset)["error_code"] == "stream_interrupted"


def test_a_stream_that_keeps_flowing_is_never_cut(rig: Rig) -> None:
    # A pause shorter than the read timeout is no stall.
    rig.fault(stall_after_chunks=2, stall_ms=READ_TIMEOUT * 1000 * 0.5, deployment="gpt-4o")
    response = rig.chat("gpt-4o", stream=True, max_tokens=40)
    assert response.status_code == 200
    assert response.content.rstrip().split(b"\n\n")[-2] == b"data: [DONE]"
