"""The opt-in response cache (issue #19) on live gateways sharing Redis: a repeated request
reaches the simulator once; another system misses; a streamed hit parses with the OpenAI SDK;
`Cache-Control` bypasses; entries expire; a purge removes them; keys and kept answers never
hold the value redaction removed; a hit counts against request limits, not token ones."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
import redis
import requests

from tests.conftest import SIM_KEY, Live, create_key
from tests.support.cluster import REDIS_URL
from tests.support.processes import Service, start_gateway, tollgate
from tests.support.rig import priced_config

PRICE = {"prompt_per_million": 2.5, "completion_per_million": 10}


@dataclass
class Rig:
    gateway: Service
    env: dict[str, str]
    work: Path
    live: Live

    def system(self, *cache: str, limits: tuple[str, ...] = ()) -> tuple[str, str]:
        """A new system (its id unique to this run) with these cache options; (id, key)."""
        system = f"c-{uuid.uuid4().hex[:10]}"
        assert tollgate("systems", "create", system, "--models", "*", env=self.env).returncode == 0
        if cache:
            done = tollgate("systems", "update", system, *cache, env=self.env)
            assert done.returncode == 0, done.stderr
        if limits:
            done = tollgate("systems", "limits", system, *limits, env=self.env)
            assert done.returncode == 0, done.stderr
        key = create_key(self.env, system)
        _wait_until_known(self.gateway.url, key)
        return system, key

    def chat(self, key: str, text: str, **extra: Any) -> requests.Response:
        headers = {"api-key": key, **extra.pop("headers", {})}
        body = {"messages": [{"role": "user", "content": text}], "max_tokens": 12, **extra}
        url = f"{self.gateway.url}/gateway/chat/completions/gpt-4o"
        return requests.post(url, headers=headers, json=body, timeout=30)

    def upstream_calls(self, marker: str) -> int:
        return sum(marker in json.dumps(r.get("body")) for r in self.live.sim_requests())

    def records(self) -> list[dict[str, Any]]:
        paths = (self.work / "usage").rglob("*.jsonl")
        return [json.loads(line) for path in paths for line in path.read_text().splitlines()]

    def record_of(self, response: requests.Response) -> dict[str, Any]:
        request_id = response.headers["x-request-id"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            found = [r for r in self.records() if r["request_id"] == request_id]
            if found:
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"no usage record for {request_id}")


def _wait_until_known(url: str, key: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if requests.get(f"{url}/v1/models", headers={"api-key": key}, timeout=5).ok:
            return
        time.sleep(0.1)
    raise AssertionError("the gateway never learned of the new key")


@pytest.fixture(scope="module")
def rig(live: Live, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    redis.Redis.from_url(REDIS_URL).ping()  # no Redis is a failure here, never a skip
    work = tmp_path_factory.mktemp("cache")
    config = priced_config(live.simulator.url, PRICE)
    env = {
        "TOLLGATE_REGISTRY": str(work / "systems.json"),
        "TOLLGATE_USAGE_RECORDS": str(work / "usage"),
        "TOLLGATE_USAGE_FLUSH_SECONDS": "0.1",
        "TOLLGATE_REGISTRY_REFRESH_SECONDS": "0.2",
        "TOLLGATE_REDIS_URL": REDIS_URL,
        "TOLLGATE_CONFIG_JSON": json.dumps(config),
        "TOLLGATE_SECRET_SIMULATOR_KEY": SIM_KEY,
    }
    gateway = start_gateway(env, work / "gateway.log")
    try:
        yield Rig(gateway, env, work, live)
    finally:
        gateway.stop()


def test_a_repeated_request_reaches_the_upstream_once(rig: Rig) -> None:
    _, key = rig.system("--cache", "on")
    marker = f"twice {uuid.uuid4().hex}"
    first, second = rig.chat(key, marker), rig.chat(key, marker, user="someone-else")
    assert first.status_code == second.status_code == 200
    assert first.headers["x-tollgate-cache"] == "miss"
    assert second.headers["x-tollgate-cache"] == "hit"
    assert second.json() == first.json()
    assert rig.upstream_calls(marker) == 1
    assert second.headers["x-tollgate-cost"].startswith("0.00000000 ")
    missed, hit = rig.record_of(first), rig.record_of(second)
    assert missed["cache"] == "miss" and missed["cost"] > 0
    assert hit["cache"] == "hit" and hit["cost"] == 0 and hit["total_tokens"] == 0
    assert hit["saved_tokens"] == first.json()["usage"]["total_tokens"]
    assert hit["saved_cost"] == pytest.approx(missed["cost"], abs=1e-8)
    assert hit["deployment"] == ""


def test_another_system_misses_unless_they_share_a_scope(rig: Rig) -> None:
    scope = f"faq-{uuid.uuid4().hex[:8]}"
    _, own = rig.system("--cache", "on")
    _, other = rig.system("--cache", "on")
    _, shared_a = rig.system("--cache-scope", scope)
    _, shared_b = rig.system("--cache-scope", scope)
    marker = f"scoped {uuid.uuid4().hex}"
    assert rig.chat(own, marker).headers["x-tollgate-cache"] == "miss"
    assert rig.chat(other, marker).headers["x-tollgate-cache"] == "miss"
    assert rig.chat(shared_a, marker).headers["x-tollgate-cache"] == "miss"
    assert rig.chat(shared_b, marker).headers["x-tollgate-cache"] == "hit"
    assert rig.upstream_calls(marker) == 3


def test_a_system_without_the_cache_is_never_served_from_it(rig: Rig) -> None:
    _, plain = rig.system()
    marker = f"plain {uuid.uuid4().hex}"
    answers = [rig.chat(plain, marker) for _ in range(2)]
    assert all("x-tollgate-cache" not in a.headers for a in answers)
    assert rig.upstream_calls(marker) == 2


def test_streamed_hits_parse_with_the_sdk_both_ways(rig: Rig) -> None:
    _, key = rig.system("--cache", "on")
    client = openai.OpenAI(base_url=rig.gateway.url + "/v1", api_key=key, max_retries=0)
    whole_first = f"whole first {uuid.uuid4().hex}"
    messages: Any = [{"role": "user", "content": whole_first}]
    whole = client.chat.completions.create(model="gpt-4o", messages=messages, max_tokens=12)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o",
        messages=messages,
        max_tokens=12,
        stream=True,
        stream_options={"include_usage": True},
    )
    assert raw.headers["x-tollgate-cache"] == "hit"
    chunks = list(raw.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    usage = chunks[-1].usage
    assert usage is not None and whole.usage is not None
    assert usage.total_tokens == whole.usage.total_tokens
    assert rig.upstream_calls(whole_first) == 1

    stream_first = f"stream first {uuid.uuid4().hex}"
    messages = [{"role": "user", "content": stream_first}]
    streamed = client.chat.completions.create(
        model="gpt-4o", messages=messages, max_tokens=12, stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    again = client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=messages, max_tokens=12
    )
    assert again.headers["x-tollgate-cache"] == "hit"
    answer = again.parse()
    assert answer.choices[0].message.content == text
    assert answer.choices[0].finish_reason in ("stop", "length")
    assert answer.usage is not None and answer.usage.total_tokens > 0
    assert rig.upstream_calls(stream_first) == 1


def test_cache_control_no_cache_refreshes_and_no_store_bypasses(rig: Rig) -> None:
    _, key = rig.system("--cache", "on")
    marker = f"bypass {uuid.uuid4().hex}"
    stored = rig.chat(key, marker, headers={"cache-control": "no-store"})
    assert stored.headers["x-tollgate-cache"] == "bypass"
    assert rig.chat(key, marker).headers["x-tollgate-cache"] == "miss"  # no-store kept nothing
    refreshed = rig.chat(key, marker, headers={"Cache-Control": "no-cache"})
    assert refreshed.headers["x-tollgate-cache"] == "refresh"
    assert rig.upstream_calls(marker) == 3
    assert rig.chat(key, marker).headers["x-tollgate-cache"] == "hit"
    assert rig.record_of(refreshed)["cache"] == "refresh"


def test_entries_expire_with_their_ttl(rig: Rig) -> None:
    _, key = rig.system("--cache", "on", "--cache-ttl", "1")
    marker = f"ttl {uuid.uuid4().hex}"
    assert rig.chat(key, marker).headers["x-tollgate-cache"] == "miss"
    assert rig.chat(key, marker).headers["x-tollgate-cache"] == "hit"
    time.sleep(1.5)
    assert rig.chat(key, marker).headers["x-tollgate-cache"] == "miss"
    assert rig.upstream_calls(marker) == 2


def test_purge_removes_a_systems_entries(rig: Rig) -> None:
    system, key = rig.system("--cache", "on")
    client = redis.Redis.from_url(REDIS_URL)
    pattern = f"tg:cache:s:{system}:*"
    for n in range(3):
        assert rig.chat(key, f"purge {n} {uuid.uuid4().hex}").status_code == 200
    deadline = time.monotonic() + 5
    while len(list(client.scan_iter(match=pattern))) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(list(client.scan_iter(match=pattern))) == 3
    done = tollgate("systems", "purge", system, "--yes", env=rig.env)
    assert done.returncode in (0, 3), done.stderr
    assert json.loads(done.stdout)["cache_entries_deleted"] == 3
    assert list(client.scan_iter(match=pattern)) == []


def test_keys_and_kept_answers_never_hold_a_redacted_value(rig: Rig) -> None:
    system, key = rig.system("--cache", "on")
    assert tollgate("systems", "update", system, "--redaction", "mask", env=rig.env).returncode == 0
    time.sleep(0.6)  # the gateway's registry refresh
    first = rig.chat(key, "My ID is A123456789, summarise my account.")
    second = rig.chat(key, "My ID is B287654308, summarise my account.")
    assert first.headers["x-tollgate-cache"] == "miss"
    assert second.headers["x-tollgate-cache"] == "hit"  # the same request once redacted
    client = redis.Redis.from_url(REDIS_URL)
    for name in client.scan_iter(match=f"tg:cache:s:{system}:*"):
        value = client.get(name) or b""
        for secret in (b"A123456789", b"B287654308"):
            assert secret not in name and secret not in value
    assert "A123456789" not in first.text and "B287654308" not in second.text


def test_a_hit_counts_against_request_limits_not_token_quotas(rig: Rig) -> None:
    _, key = rig.system("--cache", "on", limits=("--rpm", "4", "--tokens-per-day", "40"))
    marker = f"limits {uuid.uuid4().hex[:8]}"  # a short prompt: its reservation fits in 40
    first = rig.chat(key, marker)
    assert first.status_code == 200
    assert 20 < rig.record_of(first)["settled_tokens"] <= 40
    assert rig.chat(key, f"another {marker}").status_code == 429  # the day's tokens are spent
    hits = [rig.chat(key, marker) for _ in range(3)]
    assert [h.headers.get("x-tollgate-cache") for h in hits] == ["hit"] * 3
    assert hits[-1].headers["x-ratelimit-remaining-requests"] == "0"
    refused = rig.chat(key, marker)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
