"""An upstream (or a proxy in front of it) whose error pages echo the request's headers: the key
the gateway sent never reaches the client, and an error that is not an API error becomes the
gateway's own, naming the upstream's status."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from shared.upstream.scrub import MIN_FRAGMENT, REDACTED, without_key
from tests.conftest import new_system
from tests.support.processes import Service, start_gateway, start_simulator

KEY = "sk-echo-3f9QvZ2LmN8xR4tW6yB1cD7e"  # this rig's upstream key
CHAT = {"messages": [{"role": "user", "content": "hi"}]}
CONTENT_FILTER = {
    "error": {
        "message": "The response was filtered due to the prompt triggering Azure OpenAI's "
        "content management policy.",
        "type": None,
        "param": "prompt",
        "code": "content_filter",
        "status": 400,
        "innererror": {
            "code": "ResponsibleAIPolicyViolation",
            "content_filter_result": {"hate": {"filtered": True, "severity": "high"}},
        },
    }
}


@dataclass
class Rig:
    gateway: Service
    simulator: Service
    key: str
    log: Path

    def fault(self, **fault: Any) -> None:
        url = f"{self.simulator.url}/_sim/faults"
        requests.post(url, json=fault, timeout=5).raise_for_status()

    def chat(self) -> requests.Response:
        url = f"{self.gateway.url}/gateway/chat/completions/gpt-4o"
        return requests.post(url, headers={"api-key": self.key}, json=CHAT, timeout=30)


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    work = tmp_path_factory.mktemp("echo")
    simulator = start_simulator(KEY, work / "simulator.log")
    env = {
        "TOLLGATE_REGISTRY": str(work / "systems.json"),
        "TOLLGATE_USAGE_RECORDS": str(work / "usage"),
        "TOLLGATE_SIMULATOR_URL": simulator.url,
        "TOLLGATE_SECRET_SIMULATOR_KEY": KEY,
        "TOLLGATE_MAX_ATTEMPTS": "1",  # the upstream's error is the answer
        "TOLLGATE_BREAKER_FAILURES": "1000",
        "TOLLGATE_LOG_LEVEL": "DEBUG",
    }
    key = new_system(env, "echo")
    log = work / "gateway.log"
    gateway = start_gateway(env, log)
    try:
        yield Rig(gateway, simulator, key, log)
    finally:
        gateway.stop()
        simulator.stop()


def assert_no_key(response: requests.Response) -> None:
    shown = response.text + json.dumps(dict(response.headers))
    assert KEY[:MIN_FRAGMENT] not in shown


@pytest.mark.parametrize("status", [400, 500, 502, 503])
def test_an_echoed_html_page_becomes_the_gateways_error(rig: Rig, status: int) -> None:
    rig.fault(status=status, echo="html")
    response = rig.chat()
    assert_no_key(response)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == "upstream_error" and error["type"] == "upstream_error"
    assert f"HTTP {status}" in error["message"]
    assert response.headers["x-upstream-request-id"]  # the upstream's id, for its support
    assert response.headers["x-echoed-credential"] == REDACTED.decode()


@pytest.mark.parametrize("status", [400, 500])
def test_an_api_error_quoting_the_key_passes_without_it(rig: Rig, status: int) -> None:
    rig.fault(status=status, echo="json")
    response = rig.chat()
    assert_no_key(response)
    assert response.status_code == status
    message = response.json()["error"]["message"]
    assert "request headers were" in message and REDACTED.decode() in message


def test_content_filter_and_plain_api_errors_pass_unchanged(rig: Rig) -> None:
    rig.fault(status=400, body=CONTENT_FILTER)
    response = rig.chat()
    assert response.status_code == 400
    assert response.json() == CONTENT_FILTER
    rig.fault(status=500)  # the simulator's own, Azure-shaped
    response = rig.chat()
    assert response.status_code == 500
    assert set(response.json()["error"]) >= {"code", "message"}
    assert rig.chat().status_code == 200


def test_the_key_is_in_no_log_line(rig: Rig) -> None:
    rig.fault(status=502, echo="html")
    rig.chat()
    assert KEY[:MIN_FRAGMENT] not in rig.log.read_text()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"key=" + KEY.encode() + b";", b"key=" + REDACTED + b";"),
        (b"Bearer " + KEY.encode(), b"Bearer " + REDACTED),
        (KEY[:12].encode() + b"...", REDACTED + b"..."),  # a long enough prefix
        (b"x" + KEY[:20].encode() + b"/" + KEY.encode(), b"x" + REDACTED + b"/" + REDACTED),
        (KEY[: MIN_FRAGMENT - 1].encode(), KEY[: MIN_FRAGMENT - 1].encode()),  # chance
        (b"nothing here", b"nothing here"),
    ],
)
def test_without_key_removes_every_run_of_the_key(data: bytes, expected: bytes) -> None:
    assert without_key(data, KEY) == expected
