"""Every answer says what it cost (issue #19, first part): `x-tollgate-cost` on a whole answer,
a closing SSE comment on a stream, both equal to the usage record's cost, in the price table's
currency; the SDKs read the stream as before."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
import requests

from tests.conftest import Live
from tests.support.rig import Rig, gateway_rig, priced_config

PRICE = {"prompt_per_million": 2.5, "completion_per_million": 10}


@pytest.fixture
def rig(live: Live, tmp_path: Path) -> Iterator[Rig]:
    config = priced_config(live.simulator.url, PRICE, currency="TWD")
    settings = {"TOLLGATE_CONFIG_JSON": json.dumps(config)}
    with gateway_rig(tmp_path, settings, simulator=live.simulator) as made:
        yield made


def test_a_whole_answer_carries_its_cost(rig: Rig) -> None:
    answer = rig.chat()
    assert answer.status_code == 200
    amount, currency = answer.headers["x-tollgate-cost"].split()
    usage = answer.json()["usage"]
    expected = (usage["prompt_tokens"] * 2.5 + usage["completion_tokens"] * 10) / 1e6
    assert currency == "TWD" and float(amount) == pytest.approx(expected, abs=1e-8)
    record = rig.wait_for_record(lambda r: r["request_id"] == answer.headers["x-request-id"])
    assert float(amount) == pytest.approx(record["cost"], abs=1e-8)


def test_a_stream_ends_with_its_cost_as_a_comment_the_sdk_skips(rig: Rig) -> None:
    with requests.post(
        f"{rig.gateway.url}/v1/chat/completions",
        headers={"api-key": rig.key},
        json={"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
        stream=True,
        timeout=30,
    ) as streamed:
        lines = [line for line in streamed.iter_lines() if line]
        request_id = streamed.headers["x-request-id"]
    assert lines[-2] == b"data: [DONE]"
    assert lines[-1].startswith(b": x-tollgate-cost ") and lines[-1].endswith(b" TWD")
    record = rig.wait_for_record(lambda r: r["request_id"] == request_id)
    assert float(lines[-1].split()[2]) == pytest.approx(record["cost"], abs=1e-8)
    assert record["cost"] > 0
    client = openai.OpenAI(base_url=rig.gateway.url + "/v1", api_key=rig.key, max_retries=0)
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o", stream=True, messages=[{"role": "user", "content": "hi"}]
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
