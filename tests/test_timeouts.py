"""Each upstream timeout governs only its own phase, and keep-alives keep their schedule:
the read timeout is silence between chunks (never the wait for a slow first answer), the first
SSE keep-alive comes at the setting, and a stalled stream is an `upstream_timeout`, not a reset.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import SIM_KEY, new_system
from tests.support.processes import Service, start_gateway, start_simulator

READ_TIMEOUT = 0.6
KEEPALIVE = 1.0


@dataclass
class Rig:
    gateway: Service
    simulator: Service
    key: str
    usage: Path

    def fault(self, **fault: Any) -> None:
        url = f"{self.simulator.url}/_sim/faults"
        requests.post(url, json=fault, timeout=5).raise_for_status()

    def chat(self, model: str, **extra: Any) -> requests.Response:
        url = f"{self.gateway.url}/gateway/chat/completions/{model}"
        body = {"messages": [{"role": "user", "content": "hi"}], **extra}
        return requests.post(url, headers={"api-key": self.key}, json=body, timeout=30)

    def record(self, request_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for path in self.usage.rglob("*.jsonl"):
                for line in path.read_text().splitlines():
                    record: dict[str, Any] = json.loads(line)
                    if record["request_id"] == request_id:
                        return record
            time.sleep(0.1)
        raise AssertionError(f"no usage record for {request_id}")


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    work = tmp_path_factory.mktemp("timeouts")
    simulator = start_simulator(SIM_KEY, work / "simulator.log")
    env = {
        "TOLLGATE_REGISTRY": str(work / "systems.json"),
        "TOLLGATE_USAGE_RECORDS": str(work / "usage"),
        "TOLLGATE_USAGE_FLUSH_SECONDS": "0.1",
        "TOLLGATE_SIMULATOR_URL": simulator.url,
        "TOLLGATE_SECRET_SIMULATOR_KEY": SIM_KEY,
        "TOLLGATE_UPSTREAM_READ_TIMEOUT": str(READ_TIMEOUT),
        "TOLLGATE_UPSTREAM_FIRST_BYTE_TIMEOUT": "10",
        "TOLLGATE_SSE_KEEPALIVE_SECONDS": str(KEEPALIVE),
        "TOLLGATE_MAX_ATTEMPTS": "1",
        "TOLLGATE_BREAKER_FAILURES": "1000",
    }
    key = new_system(env, "app")
    gateway = start_gateway(env, work / "gateway.log")
    try:
        yield Rig(gateway, simulator, key, work / "usage")
    finally:
        gateway.stop()
        simulator.stop()


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
    comments = [line for line in lines if line.startswith(b":")]
    assert len(comments) == 2, lines[:4]
    assert lines[:2] == comments and lines[-1] == b"data: [DONE]"


def test_a_stalled_stream_is_an_upstream_timeout_and_a_reset_is_not(rig: Rig) -> None:
    rig.fault(stall_after_chunks=3, stall_ms=READ_TIMEOUT * 1000 * 4, deployment="gpt-35-turbo")
    stalled = rig.chat("gpt-35-turbo", stream=True)
    assert stalled.status_code == 200
    assert b'"code": "upstream_timeout"' in stalled.content and b"[DONE]" not in stalled.content
    assert rig.record(stalled.headers["x-request-id"])["error_code"] == "upstream_timeout"

    rig.fault(reset_after_chunks=3, deployment="gpt-35-turbo")
    reset = rig.chat("gpt-35-turbo", stream=True)
    assert b'"code": "stream_interrupted"' in reset.content
    assert rig.record(reset.headers["x-request-id"])["error_code"] == "stream_interrupted"


def test_a_stream_that_keeps_flowing_is_never_cut(rig: Rig) -> None:
    # A pause shorter than the read timeout is no stall.
    rig.fault(stall_after_chunks=2, stall_ms=READ_TIMEOUT * 1000 * 0.5, deployment="gpt-4o")
    response = rig.chat("gpt-4o", stream=True, max_tokens=40)
    assert response.status_code == 200
    assert response.content.rstrip().endswith(b"data: [DONE]")
