"""Generated requests (Hypothesis) at every route style: headers, paths and JSON bodies.

Invariants, whatever comes in: no 5xx from the gateway itself (the upstream here is healthy),
an error is always OpenAI-shaped JSON, no answer but a success quotes the request's canary (the
simulator echoes prompts in successes), neither the upstream key nor the canary reaches the log,
and the gateway goes on serving. Bounded in examples and time.
"""

from __future__ import annotations

import json
import os
import string
from typing import Any

import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import SIM_KEY, Live

CANARY = "canary-fz9q"
ROUTES = [
    "/gateway/chat/completions/gpt-4o",
    "/gateway/embeddings/text-embedding-3-small",
    "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
    "/openai/deployments/text-embedding-3-small/embeddings?api-version=2024-10-21",
    "/v1/chat/completions",
    "/v1/embeddings",
    "/openai/v1/chat/completions",
    "/openai/v1/embeddings",
]
SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
    derandomize=bool(os.environ.get("CI")),  # CI: the same examples every run; locally: new ones
)

# Any code point, unpaired surrogates too (JSON can spell them: "\ud800").
chars = st.characters(exclude_categories=()) | st.sampled_from(["\ud800", "\udfff"])
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(chars, max_size=20)
    | st.just(CANARY)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
fields = {
    "model": st.sampled_from(["gpt-4o", "text-embedding-3-small", "", "../x", 7]) | values,
    "messages": st.just([{"role": "user", "content": CANARY}]) | values,
    "input": st.just(CANARY) | values,
    "stream": st.booleans() | values,
    "stream_options": st.just({"include_usage": True}) | values,
    "max_tokens": st.integers(min_value=-3, max_value=300) | values,
    "n": st.integers(min_value=-1, max_value=3) | values,
    "metadata": values,
}
bodies = st.fixed_dictionaries({}, optional=fields) | values
# What an HTTP client will send: no whitespace at the ends (requests refuses a leading one).
header_text = st.text(alphabet=string.ascii_letters + string.digits + " -_.:/;=", max_size=40).map(
    str.strip
)


def assert_openai_error(response: requests.Response) -> None:
    assert response.status_code < 500, f"{response.status_code} {response.text[:300]}"
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/json")
        error = response.json()["error"]
        assert isinstance(error["message"], str) and error["message"]
        assert CANARY not in response.text


def streamed(body: Any) -> bool:
    return isinstance(body, dict) and body.get("stream") is True


@SETTINGS
@given(route=st.sampled_from(ROUTES), body=bodies)
def test_generated_bodies(live: Live, route: str, body: Any) -> None:
    headers = {"api-key": live.seed_key, "content-type": "application/json"}
    data = json.dumps(body).encode()
    with requests.post(f"{live.url}{route}", headers=headers, data=data, timeout=30) as response:
        assert_openai_error(response)
        if response.status_code == 200 and not streamed(body):
            assert response.json()["object"] in ("chat.completion", "list")


@SETTINGS
@given(
    route=st.sampled_from(ROUTES),
    names=st.lists(
        st.sampled_from(
            [
                "api-key",
                "authorization",
                "systemId",
                "x-request-id",
                "x-forwarded-for",
                "content-type",
                "x-ms-client-request-id",
            ]
        ),
        max_size=4,
    ),
    values_=st.lists(header_text, min_size=4, max_size=4),
)
def test_generated_headers(live: Live, route: str, names: list[str], values_: list[str]) -> None:
    headers = {"api-key": live.seed_key}
    for name, value in zip(names, values_, strict=False):
        headers[name] = value
    body: dict[str, Any] = {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "hi"}],
        "input": "hi",
    }
    response = requests.post(f"{live.url}{route}", headers=headers, json=body, timeout=30)
    assert_openai_error(response)


@SETTINGS
@given(
    path=st.text(alphabet=string.ascii_letters + string.digits + "/._-%~{}*", max_size=60),
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]),
)
def test_generated_paths(live: Live, path: str, method: str) -> None:
    url = f"{live.url}/{path.lstrip('/')}"
    headers = {"api-key": live.seed_key}
    response = requests.request(method, url, headers=headers, json={}, timeout=30)
    assert_openai_error(response)


def test_after_the_fuzzing_it_serves_and_logged_no_secret(live: Live) -> None:
    body = {"messages": [{"role": "user", "content": "still there?"}]}
    url = f"{live.url}/gateway/chat/completions/gpt-4o"
    response = requests.post(url, headers={"api-key": live.seed_key}, json=body, timeout=30)
    assert response.status_code == 200
    log = live.gateway.log_text()
    assert SIM_KEY not in log and CANARY not in log and live.seed_key not in log
