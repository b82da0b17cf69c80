"""An upstream (or a proxy in front of it) whose error pages echo the request's headers: the key
the gateway sent never reaches the client, and an error that is not an API error becomes the
gateway's own, naming the upstream's status."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests

from shared.upstream.scrub import MIN_FRAGMENT, REDACTED, without_key
from tests.support.rig import Rig, gateway_rig

KEY = "sk-echo-3f9QvZ2LmN8xR4tW6yB1cD7e"  # this rig's upstream key
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


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    settings = {
        "TOLLGATE_MAX_ATTEMPTS": "1",  # the upstream's error is the answer
        "TOLLGATE_BREAKER_FAILURES": "1000",
        "TOLLGATE_LOG_LEVEL": "DEBUG",
    }
    with gateway_rig(tmp_path_factory.mktemp("echo"), settings, upstream_key=KEY) as rig:
        yield rig


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
    assert KEY[:MIN_FRAGMENT] not in rig.gateway.log_text()


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
