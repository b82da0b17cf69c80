"""Bad input gets OpenAI-shaped JSON with the right status, never a key or a stack trace."""

from __future__ import annotations

import http.client
import time
from typing import Any

import pytest
import requests

from tests.conftest import MAX_BODY, SEED_SYSTEM, SIM_KEY, Live, create_key
from tests.support.processes import tollgate

CHAT = {"messages": [{"role": "user", "content": "hi"}]}


def post(live: Live, path: str, headers: dict[str, str], body: Any = CHAT) -> requests.Response:
    return requests.post(f"{live.url}{path}", headers=headers, json=body, timeout=30)


def assert_error(
    response: requests.Response, status: int, code: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "code"}
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code
    assert "Traceback" not in response.text
    return dict(error)


def test_missing_key(live: Live) -> None:
    assert_error(post(live, "/gateway/chat/completions/gpt-4o", {}), 401, "missing_api_key")


@pytest.mark.parametrize("header", ["api-key", "API-KEY", "Api-Key", "authorization"])
def test_unknown_key_in_any_header_spelling(live: Live, header: str) -> None:
    forged = "tg_aaaaaaaaaaaa_thisisnotarealkeyatallthisisnotarealkey1"
    value = f"Bearer {forged}" if header == "authorization" else forged
    response = post(live, "/v1/chat/completions", {header: value}, {**CHAT, "model": "gpt-4o"})
    error = assert_error(response, 401, "invalid_api_key")
    assert forged not in response.text and forged not in error["message"]


def test_valid_key_accepted_in_any_header_case(live: Live) -> None:
    for header in ("API-KEY", "Api-Key"):
        response = post(live, "/gateway/chat/completions/gpt-4o", {header: live.seed_key})
        assert response.status_code == 200, response.text
    bearer = {"Authorization": f"Bearer {live.seed_key}"}
    assert post(live, "/gateway/chat/completions/gpt-4o", bearer).status_code == 200


def test_revoked_key_is_refused_by_the_running_gateway(live: Live) -> None:
    key = create_key(live.env, SEED_SYSTEM)
    path = "/gateway/chat/completions/gpt-4o"
    deadline = time.monotonic() + 10  # the gateway re-reads the registry every 0.5 s here
    while post(live, path, {"api-key": key}).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert post(live, path, {"api-key": key}).status_code == 200
    key_id = key.split("_")[1]
    assert tollgate("keys", "revoke", key_id, env=live.env).returncode == 0
    deadline = time.monotonic() + 10
    while post(live, path, {"api-key": key}).status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert_error(post(live, path, {"api-key": key}), 401, "invalid_api_key")


def test_system_id_mismatch(live: Live) -> None:
    headers = {"api-key": live.seed_key, "systemId": "someone-else"}
    assert_error(post(live, "/gateway/chat/completions/gpt-4o", headers), 401, "system_mismatch")
    headers = {"api-key": live.seed_key, "SYSTEMID": SEED_SYSTEM}
    assert post(live, "/gateway/chat/completions/gpt-4o", headers).status_code == 200


def test_model_not_allowed_for_the_system(live: Live) -> None:
    response = post(live, "/gateway/chat/completions/gpt-4o", {"api-key": live.limited_key})
    assert_error(response, 403, "model_not_allowed")


def test_unknown_model(live: Live) -> None:
    headers = {"api-key": live.seed_key}
    assert_error(post(live, "/gateway/chat/completions/gpt-9", headers), 404, "model_not_found")
    assert_error(
        post(live, "/openai/deployments/nope/chat/completions?api-version=2024-10-21", headers),
        404,
        "model_not_found",
    )


def test_chat_model_on_embeddings_route(live: Live) -> None:
    response = post(live, "/gateway/embeddings/gpt-4o", {"api-key": live.seed_key}, {"input": "x"})
    assert_error(response, 400, "operation_not_supported")


def test_missing_model_in_body(live: Live) -> None:
    assert_error(
        post(live, "/v1/chat/completions", {"api-key": live.seed_key}), 400, "missing_model"
    )


def test_malformed_json(live: Live) -> None:
    response = requests.post(
        f"{live.url}/gateway/chat/completions/gpt-4o",
        headers={"api-key": live.seed_key, "content-type": "application/json"},
        data=b'{"messages": [',
        timeout=30,
    )
    assert_error(response, 400, "invalid_json")
    not_object = post(live, "/gateway/chat/completions/gpt-4o", {"api-key": live.seed_key}, [1, 2])
    assert_error(not_object, 400, "invalid_json")


def test_body_over_the_limit(live: Live) -> None:
    big = {"messages": [{"role": "user", "content": "x" * (MAX_BODY + 10)}]}
    response = post(live, "/gateway/chat/completions/gpt-4o", {"api-key": live.seed_key}, big)
    assert_error(response, 413, "request_too_large")


def test_body_over_the_limit_without_content_length(live: Live) -> None:
    def chunks() -> Any:
        yield b'{"messages": [{"role": "user", "content": "'
        for _ in range(MAX_BODY // 1024 + 2):
            yield b"x" * 1024
        yield b'"}]}'

    response = requests.post(
        f"{live.url}/gateway/chat/completions/gpt-4o",
        headers={"api-key": live.seed_key},
        data=chunks(),
        timeout=30,
    )
    assert_error(response, 413, "request_too_large")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/chat/completions"),
        ("PUT", "/gateway/chat/completions/gpt-4o"),
        ("POST", "/v1/models"),
        ("DELETE", "/healthz"),
    ],
)
def test_wrong_method(live: Live, method: str, path: str) -> None:
    response = requests.request(
        method, f"{live.url}{path}", headers={"api-key": live.seed_key}, timeout=30
    )
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"]


def test_a_method_no_route_lists(live: Live) -> None:
    response = requests.request("TRACE", f"{live.url}/v1/models", timeout=30)
    assert_error(response, 405, "method_not_allowed")


def test_unknown_route(live: Live) -> None:
    response = requests.get(f"{live.url}/admin/secrets", timeout=30)
    assert_error(response, 404, "not_found")


@pytest.mark.parametrize("model", ["a/b", "..", "gpt..4o", "gpt-4o\x00", "gpt\n4o", "../../etc"])
def test_hostile_model_names_in_the_body(live: Live, model: str) -> None:
    response = post(
        live, "/v1/chat/completions", {"api-key": live.seed_key}, {**CHAT, "model": model}
    )
    assert_error(response, 400, "invalid_model_name")


@pytest.mark.parametrize("raw", ["..", "%2E%2E", "gpt%00x", "gpt%0Ax", "a%2Fb", "a%5Cb"])
def test_hostile_model_names_in_the_path(live: Live, raw: str) -> None:
    # http.client sends the path exactly as written (no normalisation of '..').
    host, port = live.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = {"api-key": live.seed_key, "content-type": "application/json"}
    conn.request("POST", f"/gateway/chat/completions/{raw}", body=b"{}", headers=headers)
    response = conn.getresponse()
    body = response.read().decode()
    conn.close()
    assert response.status in (400, 404), body
    assert '"error"' in body and '"code"' in body


def test_no_key_or_prompt_ever_reaches_a_log(live: Live) -> None:
    marker = "PROMPT-MARKER-7d1f20"
    body = {"messages": [{"role": "user", "content": marker}]}
    ok = post(live, "/gateway/chat/completions/gpt-4o", {"api-key": live.seed_key}, body)
    assert marker in ok.text  # the simulator echoes it back to the client
    bad = post(live, "/gateway/chat/completions/gpt-4o", {"api-key": live.seed_key + "x"}, body)
    assert bad.status_code == 401
    log = live.gateway.log_text()
    assert '"request_id": ' in log  # the access log is there, as JSON
    for secret in (SIM_KEY, live.seed_key, live.limited_key, marker):
        assert secret not in log
