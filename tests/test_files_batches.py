"""Files and batches through the gateway (issue #17): the official SDK in OpenAI's and Azure's
styles against the simulator; each system sees only its own files and batches; a batch file is
checked line by line before the upstream sees it; a finished batch is recorded once, at the
batch price, and charged to the system's daily token quota."""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import redis
import requests
from openai import AzureOpenAI, OpenAI

from tests.conftest import SIM_KEY, Live, new_system
from tests.support.cluster import REDIS_URL, day_used
from tests.support.processes import tollgate
from tests.support.rig import Rig, gateway_rig

PRICE = {
    "prompt_per_million": 2.5,
    "completion_per_million": 10,
    "batch_prompt_per_million": 1.25,
    "batch_completion_per_million": 5,
}


def config(simulator_url: str) -> dict[str, Any]:
    """A public model 'assistant' on the simulator's deployment gpt-4o: batch lines name the
    public model, the upstream must see its deployment."""
    upstream = {
        "type": "azure",
        "endpoint": simulator_url,
        "deployment": "gpt-4o",
        "key_secret": "simulator-key",
    }
    return {
        "upstreams": {"east": upstream},
        "models": {
            "assistant": {"upstream": "east", "kind": "chat", "price": PRICE},
            "other": {"upstream": "east", "kind": "chat"},
        },
        "files": {"upstream": "east"},
    }


def batch_file(model: str = "assistant", lines: int = 3, blank_first: bool = False) -> bytes:
    rows = [
        {
            "custom_id": f"task-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": f"hello {i}"}]},
        }
        for i in range(lines)
    ]
    text = "\n".join(json.dumps(row) for row in rows) + "\n"
    return (b"\n" if blank_first else b"") + text.encode()


def sdk(rig: Rig, key: str, style: str) -> OpenAI:
    if style == "azure":
        return AzureOpenAI(
            azure_endpoint=rig.gateway.url, api_key=key, api_version="2024-10-21", max_retries=0
        )
    base = "/openai/v1" if style == "azure-v1" else "/v1"
    return OpenAI(base_url=rig.gateway.url + base, api_key=key, max_retries=0)


def sim(rig: Rig, method: str, path: str, body: Any = None) -> Any:
    answer = requests.request(method, f"{rig.simulator.url}/_sim/{path}", json=body, timeout=5)
    answer.raise_for_status()
    return answer.json()


def finished(client: OpenAI, batch_id: str) -> Any:
    deadline = time.monotonic() + 30
    for _ in range(300):
        batch = client.batches.retrieve(batch_id)
        if batch.status in ("completed", "failed", "expired", "cancelled"):
            return batch
        assert time.monotonic() < deadline, f"batch still {batch.status}"
        time.sleep(0.1)
    raise AssertionError("batch never finished")


@pytest.fixture
def rig(live: Live, tmp_path: Path) -> Iterator[Rig]:
    settings = {
        "TOLLGATE_CONFIG_JSON": json.dumps(config(live.simulator.url)),
        "TOLLGATE_REGISTRY_REFRESH_SECONDS": "0.1",
        "TOLLGATE_BATCH_FIRST_CHECK_SECONDS": "0.3",
        "TOLLGATE_REDIS_URL": REDIS_URL,
    }
    stale = _keys("tg:{app}:*")  # the daily counter of an earlier run
    if stale:
        redis.Redis.from_url(REDIS_URL).delete(*stale)
    live.sim("POST", "config", {"batch_ms": 600})
    with gateway_rig(tmp_path, settings, simulator=live.simulator) as made:
        yield made
    live.sim("POST", "config", {"batch_ms": 1500})


def _keys(pattern: str) -> list[bytes]:
    return list(redis.Redis.from_url(REDIS_URL).scan_iter(pattern))


def env_of(rig: Rig) -> dict[str, str]:
    return {
        "TOLLGATE_REGISTRY": str(rig.work / "systems.json"),
        "TOLLGATE_SIMULATOR_URL": rig.simulator.url,
        "TOLLGATE_SECRET_SIMULATOR_KEY": SIM_KEY,
    }


def wait_known(client: OpenAI) -> None:
    for _ in range(50):
        try:
            client.models.list()
            return
        except openai.AuthenticationError:
            time.sleep(0.1)


@pytest.mark.parametrize("style", ["openai", "azure", "azure-v1"])
def test_a_batch_runs_through_the_gateway_and_is_recorded_once_at_the_batch_price(
    rig: Rig, style: str
) -> None:
    client = sdk(rig, rig.key, style)
    sim(rig, "DELETE", "requests")
    uploaded = client.files.create(file=("tasks.jsonl", batch_file()), purpose="batch")
    assert uploaded.purpose == "batch" and uploaded.id.startswith("file-")
    (kept,) = [f for f in sim(rig, "GET", "files")["files"] if f["id"] == uploaded.id]
    sent = requests.get(
        f"{rig.simulator.url}/openai/files/{uploaded.id}/content?api-version=2024-10-21",
        headers={"api-key": SIM_KEY},
        timeout=5,
    ).content
    assert kept["bytes"] == len(sent)
    assert [json.loads(line)["body"]["model"] for line in sent.splitlines()] == ["gpt-4o"] * 3
    created = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    batch = finished(client, created.id)
    assert batch.status == "completed" and batch.request_counts is not None
    assert batch.request_counts.completed == 3 and batch.output_file_id
    output = client.files.content(batch.output_file_id).text.splitlines()
    usages = [json.loads(line)["response"]["body"]["usage"] for line in output]
    prompt = sum(u["prompt_tokens"] for u in usages)
    completion = sum(u["completion_tokens"] for u in usages)
    record = rig.wait_for_record(lambda r: r["operation"] == "batch")
    assert (record["batch_id"], record["model"], record["batch_requests"]) == (
        created.id,
        "assistant",
        3,
    )
    assert (record["prompt_tokens"], record["completion_tokens"]) == (prompt, completion)
    assert record["cost"] == pytest.approx((prompt * 1.25 + completion * 5) / 1e6)
    time.sleep(1.0)  # the watcher and the client both saw it end: it is recorded once
    assert [r["batch_id"] for r in rig.records() if r["operation"] == "batch"] == [created.id]


def test_a_finished_batch_counts_toward_the_daily_token_quota(rig: Rig) -> None:
    env = env_of(rig)
    limited = tollgate("systems", "limits", "app", "--tokens-per-day", "100000", env=env)
    assert limited.returncode == 0, limited.stderr
    client = sdk(rig, rig.key, "openai")
    time.sleep(0.5)  # the gateway reads the new limits
    uploaded = client.files.create(file=("tasks.jsonl", batch_file(lines=4)), purpose="batch")
    before = day_used("app")
    created = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    batch = finished(client, created.id)
    assert batch.status == "completed"
    record = rig.wait_for_record(lambda r: r["batch_id"] == created.id)
    deadline = time.monotonic() + 5
    while day_used("app") != before + record["total_tokens"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert record["total_tokens"] > 0
    assert day_used("app") == before + record["total_tokens"]


def test_each_system_sees_only_its_own_files_batches_and_outputs(rig: Rig) -> None:
    owner = sdk(rig, rig.key, "openai")
    other_key = new_system(env_of(rig), "other")
    other = sdk(rig, other_key, "openai")
    wait_known(other)
    mine = owner.files.create(file=("tasks.jsonl", batch_file()), purpose="batch")
    notes = owner.files.create(file=("notes.txt", b"private"), purpose="user_data")
    batch = owner.batches.create(
        input_file_id=mine.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    done = finished(owner, batch.id)
    assert done.output_file_id
    for attempt in (
        lambda: other.files.retrieve(mine.id),
        lambda: other.files.content(notes.id),
        lambda: other.files.content(done.output_file_id),
        lambda: other.files.delete(notes.id),
        lambda: other.batches.retrieve(batch.id),
        lambda: other.batches.cancel(batch.id),
        lambda: other.batches.create(
            input_file_id=mine.id, endpoint="/v1/chat/completions", completion_window="24h"
        ),
    ):
        with pytest.raises(openai.NotFoundError):
            attempt()
    theirs = other.files.create(file=("x.txt", b"theirs"), purpose="user_data")
    assert {f.id for f in other.files.list()} == {theirs.id}
    assert {notes.id, mine.id, done.output_file_id} <= {f.id for f in owner.files.list()}
    assert theirs.id not in {f.id for f in owner.files.list()}
    assert [b.id for b in other.batches.list()] == []
    assert batch.id in [b.id for b in owner.batches.list()]
    assert owner.files.content(notes.id).content == b"private"
    assert owner.files.delete(notes.id).deleted
    with pytest.raises(openai.NotFoundError):
        owner.files.retrieve(notes.id)


def test_a_batch_file_naming_a_model_the_system_may_not_use_never_reaches_the_upstream(
    rig: Rig,
) -> None:
    env = env_of(rig)
    narrow = new_system(env, "narrow", models="other")
    client = sdk(rig, narrow, "openai")
    wait_known(client)
    sim(rig, "DELETE", "requests")
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.files.create(file=("t.jsonl", batch_file(blank_first=True)), purpose="batch")
    error = refused.value.body
    assert isinstance(error, dict) and error["code"] == "model_not_allowed"
    assert error["message"].startswith("Line 2 of the batch file:")
    with pytest.raises(openai.BadRequestError) as mixed:
        rows = batch_file("other", 2) + batch_file("assistant", 1)
        client.files.create(file=("t.jsonl", rows), purpose="batch")
    assert "Line 3 of the batch file" in str(mixed.value)
    assert [r["path"] for r in sim(rig, "GET", "requests")["requests"]] == []
    # Allowed at upload, refused at creation once the system may no longer use the model.
    allowed = client.files.create(file=("t.jsonl", batch_file("other")), purpose="batch")
    updated = tollgate("systems", "update", "narrow", "--models", "assistant", env=env)
    assert updated.returncode == 0, updated.stderr
    time.sleep(0.5)  # the gateway re-reads its registry every 0.1 s
    created_before = sim(rig, "GET", "batches")["created"]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            client.batches.create(
                input_file_id=allowed.id, endpoint="/v1/chat/completions", completion_window="24h"
            )
        except openai.PermissionDeniedError as exc:
            assert "Line 1 of the batch file" in str(exc)
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the batch was created")
    assert sim(rig, "GET", "batches")["created"] == created_before


def test_an_upload_is_streamed_byte_for_byte_and_bad_uploads_are_refused(rig: Rig) -> None:
    client = sdk(rig, rig.key, "openai")
    data = bytes(range(256)) * 40_000  # 10 MB
    uploaded = client.files.create(file=("blob.bin", io.BytesIO(data)), purpose="user_data")
    (kept,) = [f for f in sim(rig, "GET", "files")["files"] if f["id"] == uploaded.id]

    assert (kept["bytes"], kept["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
    no_purpose = requests.post(
        rig.gateway.url + "/v1/files",
        headers={"api-key": rig.key},
        files={"file": ("a.txt", b"x")},
        timeout=10,
    )
    assert no_purpose.status_code == 400 and no_purpose.json()["error"]["param"] == "purpose"
    not_multipart = requests.post(
        rig.gateway.url + "/v1/files", headers={"api-key": rig.key}, json={}, timeout=10
    )
    assert not_multipart.status_code == 400
    assert not_multipart.json()["error"]["code"] == "invalid_content_type"


def test_a_request_may_read_only_the_callers_own_files(rig: Rig) -> None:
    owner = sdk(rig, rig.key, "openai")
    other = sdk(rig, new_system(env_of(rig), "reader"), "openai")
    wait_known(other)
    secret = owner.files.create(file=("memo.pdf", b"%PDF-1.4 private"), purpose="user_data")
    sim(rig, "DELETE", "requests")
    with pytest.raises(openai.NotFoundError):
        other.responses.create(
            model="assistant",
            input=[
                {
                    "role": "user",
                    "content": [
                        {"type": "input_file", "file_id": secret.id},
                        {"type": "input_text", "text": "summarise"},
                    ],
                }
            ],
        )
    with pytest.raises(openai.NotFoundError):
        other.chat.completions.create(
            model="assistant",
            messages=[
                {"role": "user", "content": [{"type": "file", "file": {"file_id": secret.id}}]}
            ],
        )
    assert sim(rig, "GET", "requests")["requests"] == []
    answered = owner.chat.completions.create(
        model="assistant",
        messages=[{"role": "user", "content": [{"type": "file", "file": {"file_id": secret.id}}]}],
    )
    assert answered.choices


def test_a_cancelled_batch_is_recorded_as_cancelled(rig: Rig) -> None:
    client = sdk(rig, rig.key, "azure")
    uploaded = client.files.create(file=("tasks.jsonl", batch_file()), purpose="batch")
    created = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert client.batches.cancel(created.id).status in ("cancelling", "cancelled")
    assert finished(client, created.id).status == "cancelled"
    record = rig.wait_for_record(lambda r: r["batch_id"] == created.id)
    assert (record["error_code"], record["total_tokens"], record["cost"]) == (
        "batch_cancelled",
        0,
        0.0,
    )
