"""Bodies that parse but would break the gateway, and the fields it reads for itself: each gets a
400 in OpenAI's shape (naming the field, never the content) before anything else reads it."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from tests.conftest import Live

CHAT = {"messages": [{"role": "user", "content": "hi"}]}
# Every route style, with what its body needs besides the messages.
STYLES = {
    "gateway": ("/gateway/chat/completions/gpt-4o", {}),
    "azure": ("/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21", {}),
    "openai": ("/v1/chat/completions", {"model": "gpt-4o"}),
    "azure_v1": ("/openai/v1/chat/completions", {"model": "gpt-4o"}),
}
CANARY = "canary-7f3a"


def post_raw(live: Live, style: str, data: bytes) -> requests.Response:
    path, _ = STYLES[style]
    headers = {"api-key": live.seed_key, "content-type": "application/json"}
    return requests.post(f"{live.url}{path}", headers=headers, data=data, timeout=30)


def post(live: Live, style: str, body: dict[str, Any]) -> requests.Response:
    _, extra = STYLES[style]
    return post_raw(live, style, json.dumps({**extra, **body}).encode())


def error_of(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    assert error["type"] == "invalid_request_error"
    return error


def nested(depth: int) -> str:
    return '{"a":' * (depth - 1) + f'"{CANARY}"' + "}" * (depth - 1)


def deep_bodies(depth: int) -> dict[str, str]:
    """The same depth in a field of its own, inside a message's content, and in metadata."""
    inner = nested(depth)
    return {
        "field": f'{{"messages":[{{"role":"user","content":"hi"}}],"extra":{inner}}}',
        "content": f'{{"messages":[{{"role":"user","content":[{inner}]}}]}}',
        "metadata": f'{{"messages":[{{"role":"user","content":"hi"}}],"metadata":{inner}}}',
    }


def with_model(style: str, text: str) -> bytes:
    _, extra = STYLES[style]
    if extra:
        text = '{"model":"gpt-4o",' + text[1:]
    return text.encode()


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("depth", [200, 5000])
def test_a_body_nested_too_deeply_is_a_400_on_every_style(live: Live, style: str, depth: int):
    for where, text in deep_bodies(depth).items():
        response = post_raw(live, style, with_model(style, text))
        error = error_of(response, 400, "invalid_json")
        assert "nested more than 128 levels" in error["message"], where
        assert CANARY not in response.text
    assert post(live, style, CHAT).status_code == 200  # and it goes on serving


def test_nesting_within_the_limit_passes(live: Live):
    text = deep_bodies(100)["metadata"]
    before = len(live.sim_requests())
    response = post_raw(live, "gateway", text.encode())
    assert response.status_code == 200, response.text
    assert len(live.sim_requests()) == before + 1


@pytest.mark.parametrize("style", STYLES)
def test_a_lone_surrogate_anywhere_is_a_400_on_every_style(live: Live, style: str):
    bodies = [
        '{"messages":[{"role":"user","content":"hi \\ud800 canary-7f3a"}]}',
        '{"messages":[{"role":"user","content":"hi"}],"metadata":{"k\\udfff":"canary-7f3a"}}',
        '{"messages":[{"role":"user","content":[{"type":"text","text":"\\uDC00"}]}]}',
    ]
    for text in bodies:
        response = post_raw(live, style, with_model(style, text))
        error = error_of(response, 400, "invalid_json")
        assert "not valid Unicode" in error["message"]
        assert CANARY not in response.text
    assert post(live, style, CHAT).status_code == 200


def test_a_surrogate_pair_is_an_ordinary_character(live: Live):
    text = '{"messages":[{"role":"user","content":"smile \\ud83d\\ude00"}]}'
    response = post_raw(live, "gateway", text.encode())
    assert response.status_code == 200, response.text


INVALID_FIELDS = [
    ({"stream": "yes"}, "stream", "invalid_type", "expected a boolean, but got a string"),
    ({"stream": 1}, "stream", "invalid_type", "expected a boolean, but got an integer"),
    ({"stream": True, "stream_options": "x"}, "stream_options", "invalid_type", "an object"),
    (
        {"stream": True, "stream_options": {"include_usage": "yes"}},
        "stream_options.include_usage",
        "invalid_type",
        "expected a boolean",
    ),
    ({"max_tokens": -5}, "max_tokens", "integer_below_min_value", "got -5 instead"),
    ({"max_tokens": 0}, "max_tokens", "integer_below_min_value", "Expected a value >= 1"),
    ({"max_tokens": 1.5}, "max_tokens", "invalid_type", "but got a decimal number instead"),
    ({"max_tokens": "100"}, "max_tokens", "invalid_type", "expected an integer, but got a string"),
    ({"max_tokens": True}, "max_tokens", "invalid_type", "but got a boolean instead"),
    ({"max_completion_tokens": -1}, "max_completion_tokens", "integer_below_min_value", ">= 1"),
    ({"max_output_tokens": [1]}, "max_output_tokens", "invalid_type", "but got an array"),
    ({"n": 0}, "n", "integer_below_min_value", "Expected a value >= 1"),
    ({"n": 129}, "n", "integer_above_max_value", "Expected a value <= 128"),
    ({"n": "2"}, "n", "invalid_type", "expected an integer, but got a string"),
]


@pytest.mark.parametrize(("fields", "param", "code", "words"), INVALID_FIELDS)
def test_fields_the_gateway_reads_are_checked_before_admission(
    live: Live, fields: dict[str, Any], param: str, code: str, words: str
):
    before = len(live.sim_requests())
    error = error_of(post(live, "openai", {**CHAT, **fields}), 400, code)
    assert error["param"] == param
    assert words in error["message"]
    assert len(live.sim_requests()) == before  # the upstream never saw it


@pytest.mark.parametrize(
    "fields",
    [
        {"stream": None, "max_tokens": None, "n": None, "stream_options": None},
        {"stream": False, "max_tokens": 5, "n": 2},
        {"max_completion_tokens": 7, "user": "someone", "logit_bias": {"50256": -100}},
    ],
)
def test_valid_and_null_fields_pass_untouched(live: Live, fields: dict[str, Any]):
    before = len(live.sim_requests())
    response = post(live, "openai", {**CHAT, **fields})
    assert response.status_code == 200, response.text
    assert len(live.sim_requests()) == before + 1
