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

from shared.errors import ConfigError
from shared.upstream.config import GatewayConfig, parse_config
from shared.usage.account import Account, _usage
from shared.usage.counts import Tokens, flat_counts, tokens_of
from shared.usage.record import UsageRecord

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
    return flat(usage)


def flat(usage: dict[str, Any]) -> dict[str, int]:
    """Whole numbers, nested ones (the token details) under dotted names."""
    found: dict[str, int] = {}
    for key, value in usage.items():
        if isinstance(value, dict):
            found.update({f"{key}.{k}": v for k, v in flat(value).items()})
        elif isinstance(value, int) and not isinstance(value, bool):
            found[key] = value
    return found


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


CHAT_USAGE = {
    "prompt_tokens": 2006,
    "completion_tokens": 300,
    "total_tokens": 2306,
    "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 192, "audio_tokens": 0},
}
RESPONSES_USAGE = {
    "input_tokens": 2006,
    "input_tokens_details": {"cached_tokens": 1920},
    "output_tokens": 300,
    "output_tokens_details": {"reasoning_tokens": 192},
    "total_tokens": 2306,
}


@pytest.mark.parametrize("usage", [CHAT_USAGE, RESPONSES_USAGE])
def test_cached_and_reasoning_tokens_are_read_under_either_api_s_names(
    usage: dict[str, Any],
) -> None:
    body = json.dumps({"id": "x", "usage": usage, "service_tier": "default"}).encode()
    assert tokens_of(_usage(body)) == Tokens(2006, 300, 1920, 192)
    assert tokens_of(flat_counts(usage)).total == 2306


def price_table(price: dict[str, Any]) -> GatewayConfig:
    return parse_config(
        {
            "upstreams": {
                "u": {
                    "type": "openai",
                    "base_url": "https://x.test/v1",
                    "model": "m",
                    "key_secret": "k",
                }
            },
            "models": {"m": {"upstream": "u", "price": price}},
        }
    )


def test_cached_prompt_tokens_are_priced_at_the_cached_price_when_one_is_given() -> None:
    tokens = Tokens(2006, 300, 1920, 192)
    with_cached = price_table(
        {"prompt_per_million": 2.0, "completion_per_million": 8.0, "cached_prompt_per_million": 0.5}
    )
    without = price_table({"prompt_per_million": 2.0, "completion_per_million": 8.0})
    assert with_cached.cost("m", tokens) == pytest.approx((86 * 2.0 + 1920 * 0.5 + 300 * 8.0) / 1e6)
    assert without.cost("m", tokens) == pytest.approx((2006 * 2.0 + 300 * 8.0) / 1e6)
    assert with_cached.cost("unknown", tokens) == 0.0


@pytest.mark.parametrize("bad", [-1, "0.5", True])
def test_a_cached_price_must_be_a_number_of_at_least_zero(bad: object) -> None:
    with pytest.raises(ConfigError, match="must be a number >= 0"):
        price_table({"cached_prompt_per_million": bad})


def test_the_usage_record_carries_cached_and_reasoning_tokens_and_their_cost() -> None:
    records: list[UsageRecord] = []

    class Sink:
        def add(self, record: UsageRecord) -> None:
            records.append(record)

    table = price_table(
        {"prompt_per_million": 2.0, "completion_per_million": 8.0, "cached_prompt_per_million": 0.5}
    )
    account = Account(Sink(), table.cost, "req_1", "openai", "responses", "127.0.0.1")
    account.model = "m"
    account.close_body(200, json.dumps({"id": "resp_1", "usage": RESPONSES_USAGE}).encode())
    (record,) = records
    assert (record.prompt_tokens, record.completion_tokens) == (2006, 300)
    assert (record.cached_tokens, record.reasoning_tokens) == (1920, 192)
    assert record.cost == pytest.approx((86 * 2.0 + 1920 * 0.5 + 300 * 8.0) / 1e6)
