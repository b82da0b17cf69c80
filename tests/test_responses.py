"""The Responses API's create call through the gateway (issue #16, first part): the official SDK
in its three styles, sync and async, streamed and not, the seed's route style, usage records
and limits settled on the answer's own usage, redaction of `input` and `instructions`."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest
import requests
from openai import AsyncOpenAI, AzureOpenAI, OpenAI
from openai.types.responses import (
    ResponseCompletedEvent,
    ResponseErrorEvent,
    ResponseInputItemParam,
    ResponseTextDeltaEvent,
)

from tests.conftest import SIM_KEY, Live, new_system
from tests.support.processes import tollgate
from tests.support.rig import gateway_rig

PREVIEW = "2025-04-01-preview"
# Systems are added after the rig's gateway started: it must see them at once.
FRESH_REGISTRY = {"TOLLGATE_REGISTRY_REFRESH_SECONDS": "0.1"}


def client(url: str, key: str, kind: str) -> OpenAI:
    if kind == "azure":  # the AzureOpenAI SDK: /openai/responses?api-version=..., model in body
        return AzureOpenAI(azure_endpoint=url, api_key=key, api_version=PREVIEW, max_retries=0)
    base = f"{url}/openai/v1" if kind == "azure-v1" else f"{url}/v1"
    return OpenAI(base_url=base, api_key=key, max_retries=0)


@pytest.mark.parametrize("kind", ["openai", "azure", "azure-v1"])
def test_create_through_each_sdk_style(live: Live, kind: str) -> None:
    live.sim("DELETE", "requests")
    reply = client(live.url, live.seed_key, kind).responses.create(
        model="gpt-4o", input="Tell me about Tollgate", instructions="Be brief."
    )
    assert reply.object == "response" and reply.status == "completed"
    assert "Tell me about Tollgate" in reply.output_text
    assert reply.usage is not None and reply.usage.input_tokens > 0
    (seen,) = live.sim_requests()
    # The gateway's upstream is an Azure deployment, reached on Azure's v1 Responses path.
    assert seen["path"] == "/openai/v1/responses" and seen["body"]["model"] == "gpt-4o"
    assert seen["headers"]["api-key"] == SIM_KEY and "stream_options" not in seen["body"]


@pytest.mark.parametrize("kind", ["openai", "azure"])
def test_stream_relays_every_event_in_order(live: Live, kind: str) -> None:
    stream = client(live.url, live.seed_key, kind).responses.create(
        model="gpt-4o", input=[{"role": "user", "content": "stream this"}], stream=True
    )
    events = list(stream)
    final = events[-1]
    assert events[0].type == "response.created" and isinstance(final, ResponseCompletedEvent)
    assert [event.sequence_number for event in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if isinstance(e, ResponseTextDeltaEvent))
    assert text == final.response.output_text and "stream this" in text


async def test_async_create(live: Live) -> None:
    async with AsyncOpenAI(base_url=f"{live.url}/v1", api_key=live.seed_key) as aclient:
        reply = await aclient.responses.create(model="gpt-4o", input="async hello")
    assert "async hello" in reply.output_text


def test_the_seeds_route_style(live: Live) -> None:
    url = f"{live.url}/gateway/responses/gpt-4o"
    headers = {"api-key": live.seed_key, "systemId": "0003R3"}
    answer = requests.post(url, headers=headers, json={"input": "hi"}, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.json()["object"] == "response"


@pytest.mark.parametrize(
    ("model", "status", "code"),
    [
        ("text-embedding-3-small", 400, "operation_not_supported"),
        ("no-such-model", 404, "model_not_found"),
    ],
)
def test_models_that_cannot_answer(live: Live, model: str, status: int, code: str) -> None:
    url = f"{live.url}/v1/responses"
    headers = {"Authorization": f"Bearer {live.seed_key}"}
    answer = requests.post(url, headers=headers, json={"model": model, "input": "x"}, timeout=30)
    assert (answer.status_code, answer.json()["error"]["code"]) == (status, code)


def test_usage_records_and_limits_settle_on_the_answers_usage(tmp_path: Path) -> None:
    env = {"TOLLGATE_REDIS_URL": "redis://127.0.0.1:6379/0", **FRESH_REGISTRY}
    with gateway_rig(tmp_path, env) as rig:
        key = new_system(
            {**_rig_env(tmp_path, rig.simulator.url), **env}, "metered", limits={"tpm": 100_000}
        )
        sdk = client(rig.gateway.url, key, "openai")
        reply = sdk.responses.create(model="gpt-4o", input="count me", max_output_tokens=8)
        events = list(sdk.responses.create(model="gpt-4o", input="count me too", stream=True))
        final = events[-1]
        assert isinstance(final, ResponseCompletedEvent)
        usage = [reply.usage, final.response.usage]
        records = [rig.wait_for_record(metered(stream)) for stream in (False, True)]
    for record, spent in zip(records, usage, strict=True):
        assert spent is not None
        assert record["operation"] == "responses" and record["status"] == 200
        assert (record["prompt_tokens"], record["completion_tokens"]) == (
            spent.input_tokens,
            spent.output_tokens,
        )
        assert record["settled_tokens"] == spent.total_tokens
        assert record["reserved_tokens"] > spent.input_tokens  # prompt plus the output allowance
    assert records[0]["reserved_tokens"] < records[1]["reserved_tokens"]  # max_output_tokens=8


def test_input_and_instructions_are_redacted(tmp_path: Path, live: Live) -> None:
    with gateway_rig(tmp_path, FRESH_REGISTRY, simulator=live.simulator) as rig:
        env = _rig_env(tmp_path, live.simulator.url)
        key = new_system(env, "masked")
        assert (
            tollgate("systems", "update", "masked", "--redaction", "mask", env=env).returncode == 0
        )
        live.sim("DELETE", "requests")
        body: dict[str, Any] = {
            "model": "gpt-4o",
            "instructions": "Reply to wang.da@example.com.tw",
            "input": [
                {"role": "user", "content": [{"type": "input_text", "text": "ID A123456789"}]},
                {"role": "user", "content": "call 0912-345-678"},
            ],
        }
        answer = requests.post(
            f"{rig.gateway.url}/v1/responses",
            headers={"Authorization": f"Bearer {key}"},
            json=body,
            timeout=30,
        )
    assert answer.status_code == 200, answer.text
    (seen,) = live.sim_requests()
    sent = json.dumps(seen["body"])
    assert "[EMAIL]" in sent and "[TW_ID]" in sent and "[PHONE]" in sent
    for value in ("wang.da@example.com.tw", "A123456789", "0912-345-678"):
        assert value not in sent and value not in answer.text


def metered(stream: bool) -> Callable[[dict[str, Any]], bool]:
    return lambda record: record["system"] == "metered" and record["stream"] is stream


def _rig_env(work: Path, simulator_url: str) -> dict[str, str]:
    return {
        "TOLLGATE_REGISTRY": str(work / "systems.json"),
        "TOLLGATE_SIMULATOR_URL": simulator_url,
        "TOLLGATE_SECRET_SIMULATOR_KEY": SIM_KEY,
    }


def test_a_chain_of_three_turns_streamed_or_not(live: Live) -> None:
    sdk = client(live.url, live.seed_key, "openai")
    first = sdk.responses.create(model="gpt-4o", input="turn one")
    events = list(
        sdk.responses.create(
            model="gpt-4o", input="turn two", previous_response_id=first.id, stream=True
        )
    )
    second = events[-1]
    assert isinstance(second, ResponseCompletedEvent)
    live.sim("DELETE", "requests")
    third = sdk.responses.create(
        model="gpt-4o", input="turn three", previous_response_id=second.response.id
    )
    assert "turn three" in third.output_text
    (seen,) = live.sim_requests()
    assert seen["body"]["previous_response_id"] == second.response.id


def test_another_systems_response_is_never_found(live: Live) -> None:
    mine = client(live.url, live.seed_key, "openai").responses.create(model="gpt-4o", input="x")
    other_key = new_system(live.env, "other-responder")
    headers = {"Authorization": f"Bearer {other_key}"}
    _wait_until_known(live, headers)
    url = f"{live.url}/v1/responses"
    live.sim("DELETE", "requests")
    answers = {}
    for name, previous in (("theirs", mine.id), ("unknown", "resp_" + "0" * 32)):
        body = {"model": "gpt-4o", "input": "y", "previous_response_id": previous}
        answers[name] = requests.post(url, headers=headers, json=body, timeout=30)
    for answer in answers.values():
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == "previous_response_not_found"
    # Told apart by nothing, and no upstream call made for either.
    messages = [
        a.json()["error"]["message"].replace(p, "ID")
        for a, p in zip(answers.values(), (mine.id, "resp_" + "0" * 32), strict=True)
    ]
    assert messages[0] == messages[1]
    assert live.sim_requests() == []


def test_follow_ups_go_to_the_deployment_that_holds_the_response(
    live: Live, tmp_path: Path
) -> None:
    deployments = {"dep-a": "gpt-4o", "dep-b": "gpt-4-turbo"}  # distinct names at the simulator
    config = {
        "upstreams": {
            name: {
                "type": "azure",
                "endpoint": live.simulator.url,
                "deployment": target,
                "key_secret": "simulator-key",
            }
            for name, target in deployments.items()
        },
        "models": {
            "pooled": {
                "upstreams": [
                    {"upstream": "dep-a", "weight": 1},
                    {"upstream": "dep-b", "weight": 1},
                ],
                "tokenizer": "gpt-4o",
            }
        },
    }
    settings = {"TOLLGATE_CONFIG_JSON": json.dumps(config), **FRESH_REGISTRY}
    with gateway_rig(tmp_path, settings, simulator=live.simulator) as rig:
        sdk = client(rig.gateway.url, rig.key, "openai")
        first = sdk.responses.with_raw_response.create(model="pooled", input="start")
        holder = first.headers["x-tollgate-upstream"]
        first_id = first.parse().id
        live.sim("DELETE", "requests")
        for _ in range(100):
            sdk.responses.create(model="pooled", input="again", previous_response_id=first_id)
        seen = live.sim_requests()
        assert len(seen) == 100
        assert {s["body"]["model"] for s in seen} == {deployments[holder]}  # 1:1 would split
        live.sim("POST", "faults", {"status": 500, "count": 20, "deployment": deployments[holder]})
        live.sim("DELETE", "requests")
        failed = [
            requests.post(
                f"{rig.gateway.url}/v1/responses",
                headers={"Authorization": f"Bearer {rig.key}"},
                json={"model": "pooled", "input": "down", "previous_response_id": first_id},
                timeout=30,
            )
            for _ in range(7)  # the holder fails 5 times: its breaker opens
        ]
        live.sim("DELETE", "faults")
        assert [answer.status_code for answer in failed] == [500] * 5 + [503] * 2
        error = failed[-1].json()["error"]
        assert error["code"] == "previous_response_unavailable" and first_id in error["message"]
        assert int(failed[-1].headers["retry-after"]) >= 1
        assert {s["body"]["model"] for s in live.sim_requests()} == {deployments[holder]}


@pytest.mark.parametrize("kind", ["openai", "azure", "azure-v1"])
def test_retrieve_list_input_items_and_delete_own_responses(live: Live, kind: str) -> None:
    sdk = client(live.url, live.seed_key, kind)
    created = sdk.responses.create(model="gpt-4o", input="keep me")
    again = sdk.responses.retrieve(created.id)
    assert again.id == created.id and again.output_text == created.output_text
    items = sdk.responses.input_items.list(created.id)
    assert [item.type for item in items.data] == ["message"]
    deleted = sdk.responses.with_raw_response.delete(created.id)
    assert deleted.status_code == 200
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(created.id)  # gone upstream: the upstream's own 404


def test_cancel_is_relayed_to_the_holding_deployment(live: Live) -> None:
    sdk = client(live.url, live.seed_key, "openai")
    created = sdk.responses.create(model="gpt-4o", input="not in the background")
    with pytest.raises(openai.BadRequestError, match="background"):
        sdk.responses.cancel(created.id)


def test_another_systems_stored_response_is_never_found(live: Live) -> None:
    mine = client(live.url, live.seed_key, "openai").responses.create(model="gpt-4o", input="x")
    other_key = new_system(live.env, "other-reader")
    headers = {"Authorization": f"Bearer {other_key}"}
    _wait_until_known(live, headers)
    live.sim("DELETE", "requests")
    for method, path in (
        ("GET", f"/v1/responses/{mine.id}"),
        ("DELETE", f"/v1/responses/{mine.id}"),
        ("POST", f"/v1/responses/{mine.id}/cancel"),
        ("GET", f"/v1/responses/{mine.id}/input_items"),
        ("GET", f"/openai/v1/responses/{mine.id}"),
        ("GET", f"/openai/responses/{mine.id}?api-version={PREVIEW}"),
        ("GET", "/v1/responses/resp_unknown0000"),
    ):
        answer = requests.request(method, live.url + path, headers=headers, timeout=30)
        assert answer.status_code == 404, (method, path, answer.text)
        assert answer.json()["error"]["code"] == "response_not_found"
    assert live.sim_requests() == []  # nothing reached the upstream
    still = client(live.url, live.seed_key, "openai").responses.retrieve(mine.id)
    assert still.id == mine.id  # and nothing was deleted


def _wait_until_known(live: Live, headers: dict[str, str]) -> None:
    """A key created after the live gateway started: its registry is read every 0.5 s."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        probe = requests.get(f"{live.url}/v1/models", headers=headers, timeout=30)
        if probe.status_code == 200:
            return
        time.sleep(0.1)
    raise AssertionError("the new key was never accepted")


@pytest.mark.parametrize("kind", ["openai", "azure", "azure-v1"])
def test_a_stream_resumes_after_a_sequence_number(live: Live, kind: str) -> None:
    sdk = client(live.url, live.seed_key, kind)
    events = list(sdk.responses.create(model="gpt-4o", input="resume me", stream=True))
    final = events[-1]
    assert isinstance(final, ResponseCompletedEvent)
    live.sim("DELETE", "requests")
    resumed = list(sdk.responses.retrieve(final.response.id, stream=True, starting_after=3))
    assert [e.sequence_number for e in resumed] == [e.sequence_number for e in events[4:]]
    assert [e.type for e in resumed] == [e.type for e in events[4:]]
    (seen,) = live.sim_requests()
    assert seen["query"]["stream"] == "true" and seen["query"]["starting_after"] == "3"


def test_a_resumed_stream_is_answered_only_for_its_owner(live: Live) -> None:
    mine = client(live.url, live.seed_key, "openai").responses.create(model="gpt-4o", input="x")
    other = new_system(live.env, "other-resumer")
    headers = {"Authorization": f"Bearer {other}"}
    _wait_until_known(live, headers)
    live.sim("DELETE", "requests")
    url = f"{live.url}/v1/responses/{mine.id}?stream=true&starting_after=0"
    answer = requests.get(url, headers=headers, timeout=30)
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "response_not_found"
    bad = requests.get(
        f"{live.url}/v1/responses/{mine.id}?stream=true&starting_after=x",
        headers={"Authorization": f"Bearer {live.seed_key}"},
        timeout=30,
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "starting_after"
    assert live.sim_requests() == []


@pytest.mark.parametrize("kind", ["openai", "azure", "azure-v1"])
def test_input_tokens_are_counted_by_the_models_deployment(live: Live, kind: str) -> None:
    sdk = client(live.url, live.seed_key, kind)
    prompt: dict[str, Any] = {"input": "How many tokens is this?", "instructions": "Be brief."}
    live.sim("DELETE", "requests")
    counted = sdk.responses.input_tokens.count(model="gpt-4o", **prompt)
    (seen,) = live.sim_requests()
    assert seen["path"].endswith("/responses/input_tokens") and seen["body"]["model"] == "gpt-4o"
    created = sdk.responses.create(model="gpt-4o", **prompt)
    assert created.usage is not None and counted.input_tokens == created.usage.input_tokens


def test_input_tokens_checks_model_and_chain(live: Live) -> None:
    url = f"{live.url}/v1/responses/input_tokens"
    headers = {"Authorization": f"Bearer {live.seed_key}"}
    live.sim("DELETE", "requests")
    for body, status, code in (
        ({"input": "x"}, 400, "missing_model"),  # the gateway routes by model
        ({"model": "no-such-model", "input": "x"}, 404, "model_not_found"),
        (
            {"model": "gpt-4o", "input": "x", "previous_response_id": "resp_" + "0" * 32},
            404,
            "previous_response_not_found",
        ),
    ):
        answer = requests.post(url, headers=headers, json=body, timeout=30)
        assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), body
    assert live.sim_requests() == []


def test_the_first_event_reaches_the_client_before_the_upstream_sends_its_last(
    live: Live,
) -> None:
    """A buffering gateway would let the simulator finish before the client saw an event, and
    the client's hang-up could not reach it; it does, so events are relayed as they come."""
    live.sim("POST", "config", {"tokens_per_second": 10, "completion_tokens": 16})
    live.sim("DELETE", "requests")
    try:
        with requests.post(
            f"{live.url}/v1/responses",
            headers={"Authorization": f"Bearer {live.seed_key}"},
            json={"model": "gpt-4o", "input": "slowly", "stream": True},
            stream=True,
            timeout=30,
        ) as answer:
            assert answer.headers["content-type"].startswith("text/event-stream")
            first = next(answer.iter_lines())
            assert first == b"event: response.created"
        deadline = time.monotonic() + 5
        while not (seen := live.sim_requests())[-1]["client_disconnected"]:
            assert time.monotonic() < deadline, "the hang-up never reached the upstream"
            time.sleep(0.05)
    finally:
        live.sim("POST", "config", {"tokens_per_second": 0})
    assert seen[-1]["path"] == "/openai/v1/responses"


def test_a_canary_prompt_is_in_no_log_line_or_usage_record(tmp_path: Path) -> None:
    canary = "CANARY-" + uuid.uuid4().hex
    with gateway_rig(tmp_path, {"TOLLGATE_LOG_LEVEL": "DEBUG"}) as rig:
        sdk = client(rig.gateway.url, rig.key, "openai")
        reply = sdk.responses.create(model="gpt-4o", input=canary, instructions=canary)
        streamed: list[ResponseInputItemParam] = [{"role": "user", "content": canary}]
        list(sdk.responses.create(model="gpt-4o", input=streamed, stream=True))
        sdk.responses.input_tokens.count(model="gpt-4o", input=canary)
        with pytest.raises(openai.NotFoundError):
            sdk.responses.create(model="no-such-model", input=canary)
        with pytest.raises(openai.BadRequestError):
            sdk.responses.create(model="gpt-4o", input=canary, max_output_tokens=-1)
        assert canary in reply.output_text  # it did reach the model
        deadline = time.monotonic() + 10
        while len(rig.records()) < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        records = rig.records()
        logs = rig.gateway.log_text()
    assert len(records) == 5 and {r["system"] for r in records} == {"app"}
    assert canary not in logs and canary not in json.dumps(records)


def test_a_stream_the_upstream_breaks_ends_with_an_error_event(live: Live) -> None:
    live.sim("POST", "config", {"tokens_per_second": 50, "completion_tokens": 16})
    live.sim("POST", "faults", {"reset_after_chunks": 6, "count": 1})
    try:
        stream = client(live.url, live.seed_key, "openai").responses.create(
            model="gpt-4o", input="break me", stream=True
        )
        events = list(stream)
    finally:
        live.sim("POST", "config", {"tokens_per_second": 0})
        live.sim("DELETE", "faults")
    last = events[-1]
    assert isinstance(last, ResponseErrorEvent) and last.code == "stream_interrupted"
    numbers = [event.sequence_number for event in events]
    assert numbers == list(range(len(events)))  # the error numbered after what was relayed
    assert not any(isinstance(event, ResponseCompletedEvent) for event in events)


def test_the_deployment_scoped_azure_route(live: Live) -> None:
    live.sim("DELETE", "requests")
    answer = requests.post(
        f"{live.url}/openai/deployments/gpt-4o/responses?api-version={PREVIEW}",
        headers={"api-key": live.seed_key},
        json={"input": "deployment in the path"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert "deployment in the path" in answer.json()["output"][0]["content"][0]["text"]
    (seen,) = live.sim_requests()
    assert seen["path"] == "/openai/v1/responses" and seen["body"]["model"] == "gpt-4o"
