"""Reading the tokens of a non-streamed answer (shared/usage/account.py): the top-level `usage`,
read from near the end, must equal what parsing the whole answer gives, wherever other
`usage` keys or values sit."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.usage.account import _usage

USAGE = {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
SETTINGS = settings(
    max_examples=300, derandomize=bool(os.environ.get("CI")), deadline=None, database=None
)


def expected(body: bytes) -> dict[str, int]:
    try:
        usage = json.loads(body).get("usage") or {}
    except (ValueError, AttributeError):
        return {}
    if not isinstance(usage, dict):
        return {}
    return {k: v for k, v in usage.items() if isinstance(v, int) and not isinstance(v, bool)}


@pytest.mark.parametrize(
    "answer",
    [
        {"id": "x", "choices": [], "usage": USAGE},  # Azure: usage last
        {
            "choices": [],
            "usage": {**USAGE, "completion_tokens_details": {"reasoning_tokens": 0}},
            "service_tier": "default",
            "system_fingerprint": "fp",
        },  # OpenAI: members after it
        {"usage": USAGE, "x": {"usage": {"prompt_tokens": 5, "total_tokens": 5}}},  # nested later
        {"usage": USAGE, "choices": [{"message": {"content": "usage"}}]},  # a value "usage"
        {"data": [], "usage": {"prompt_tokens": 8, "total_tokens": 8}},  # embeddings
        {"usage": 5},
        {"choices": []},
    ],
)
def test_the_top_level_usage_is_read(answer: dict[str, Any]) -> None:
    for body in (json.dumps(answer).encode(), json.dumps(answer, indent=2).encode()):
        assert _usage(body) == expected(body)


@pytest.mark.parametrize("body", [b"", b"not json", b"[1, 2]", b'{"usage": {"a": 1}', b"\xff"])
def test_broken_answers_count_nothing(body: bytes) -> None:
    assert _usage(body) == {}


scalars = st.none() | st.booleans() | st.integers(-5, 10**6) | st.sampled_from(["usage", "x"])
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["usage", "a", "total_tokens"]), inner, max_size=3)
    ),
    max_leaves=12,
)


@SETTINGS
@given(
    before=st.dictionaries(st.sampled_from(["id", "choices", "b"]), values, max_size=3),
    usage=st.dictionaries(
        st.sampled_from(["prompt_tokens", "completion_tokens", "total_tokens", "d"]), values
    ),
    after=st.dictionaries(st.sampled_from(["service_tier", "z", "c"]), values, max_size=3),
    indent=st.sampled_from([None, 1]),
)
def test_same_as_parsing_the_whole_answer(
    before: dict[str, Any], usage: dict[str, Any], after: dict[str, Any], indent: int | None
) -> None:
    body = json.dumps({**before, "usage": usage, **after}, indent=indent).encode()
    assert _usage(body) == expected(body)
