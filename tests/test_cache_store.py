"""The response cache's parts: the request key, the in-process store's bounds, and the policy
a registry entry gives."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import redis
import requests

from shared.cache.key import request_key, scope_prefix
from shared.cache.policy import parse_cache_policy, shared_scope, system_scope
from shared.cache.store import MemoryAnswers
from shared.errors import ConfigError
from tests.support.cluster import REDIS_URL
from tests.support.rig import gateway_rig

EMBEDDER = "text-embedding-3-small"
BODY = {"messages": [{"role": "user", "content": "hi"}], "temperature": 0, "max_tokens": 9}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_key_ignores_delivery_and_end_user_but_not_what_decides_the_answer() -> None:
    key = request_key("s:a:1", "chat", "gpt-4o", BODY)
    delivery = {**BODY, "stream": True, "stream_options": {"include_usage": True}, "user": "u"}
    assert request_key("s:a:1", "chat", "gpt-4o", {**delivery, "model": "x"}) == key
    assert request_key("s:a:1", "chat", "gpt-4o", dict(reversed(BODY.items()))) == key
    for other in (
        request_key("s:b:1", "chat", "gpt-4o", BODY),
        request_key("s:a:1", "chat", "gpt-4o-mini", BODY),
        request_key("s:a:1", "completions", "gpt-4o", BODY),
        request_key("s:a:1", "chat", "gpt-4o", {**BODY, "temperature": 1}),
        request_key("s:a:1", "chat", "gpt-4o", {**BODY, "tools": [{"type": "function"}]}),
    ):
        assert other != key
    assert key.startswith(scope_prefix("s:a:1")) and "hi" not in key


async def test_the_memory_store_keeps_within_its_bytes_and_ttl() -> None:
    clock = Clock()
    store = MemoryAnswers(max_bytes=300, max_entry_bytes=150, clock=clock)
    store.put_soon("tg:cache:x:a:1", b"a" * 100, 60)
    store.put_soon("tg:cache:x:a:2", b"b" * 100, 60)
    assert store.bytes <= 300
    assert (await store.get("tg:cache:x:a:1")) is not None  # now the most recently used
    store.put_soon("tg:cache:x:a:3", b"c" * 100, 60)  # over the bound: the oldest use goes
    assert await store.get("tg:cache:x:a:2") is None
    assert store.bytes <= 300
    store.put_soon("tg:cache:x:a:4", b"d" * 200, 60)  # larger than an entry may be
    assert await store.get("tg:cache:x:a:4") is None
    clock.now += 30
    kept = await store.get("tg:cache:x:a:3")
    assert kept is not None and kept.answer == b"c" * 100 and kept.age_seconds == 30
    clock.now += 31
    assert await store.get("tg:cache:x:a:3") is None
    assert await store.get("tg:cache:x:a:1") is None


async def test_the_memory_store_purges_by_scope() -> None:
    store = MemoryAnswers(max_bytes=10_000, max_entry_bytes=1_000)
    for scope in ("s:a:1", "s:a:2", "s:ab:1", "x:faq"):
        store.put_soon(scope_prefix(scope) + "k", b"answer", 60)
    assert await store.purge([scope_prefix("s:a"), scope_prefix("x:faq")]) == 3
    assert await store.get(scope_prefix("s:ab:1") + "k") is not None
    assert store.bytes == len(b"answer") + len(scope_prefix("s:ab:1") + "k")


def test_the_policy_from_a_registry_entry() -> None:
    assert parse_cache_policy(None, "a", "t", "here") is None
    own = parse_cache_policy({"ttl_seconds": 60}, "a", "2026-12-06T00:00:00Z", "here")
    assert own is not None and own.scope == system_scope("a", "2026-12-06T00:00:00Z")
    assert own.covers("anything")
    again = parse_cache_policy({"ttl_seconds": 60}, "a", "2026-12-07T00:00:00Z", "here")
    assert again is not None and again.scope != own.scope  # the same id made again
    shared = parse_cache_policy({"scope": "faq", "models": ["m"]}, "a", "t", "here")
    assert shared is not None and shared.scope == shared_scope("faq") and shared.ttl_seconds
    assert shared.covers("m") and not shared.covers("n")
    for bad in ({"ttl_seconds": 0}, {"scope": "a b"}, {"models": "m"}, {"size": 1}, [1]):
        with pytest.raises(ConfigError):
            parse_cache_policy(bad, "a", "t", "here")


def test_without_redis_answers_are_kept_in_the_process(live, tmp_path) -> None:
    settings = {"TOLLGATE_CACHE_MEMORY_BYTES": "100000"}
    with gateway_rig(tmp_path, settings, simulator=live.simulator) as rig:
        models = f"gpt-4o,{EMBEDDER}"
        done = tollgate_update(rig.work, "app", "--cache", "on", "--cache-models", models)
        assert done.returncode == 0, done.stderr
        time.sleep(0.6)
        marker = f"memory {uuid.uuid4().hex}"
        answers = [rig.chat(messages=[{"role": "user", "content": marker}]) for _ in range(2)]
        assert [a.headers.get("x-tollgate-cache") for a in answers] == ["miss", "hit"]
        other = rig.chat("gpt-35-turbo", messages=[{"role": "user", "content": marker}])
        assert "x-tollgate-cache" not in other.headers  # not a model the cache covers
        url = f"{rig.gateway.url}/v1/embeddings"
        body = {"model": EMBEDDER, "input": marker}
        embedded = [
            requests.post(url, headers={"api-key": rig.key}, json=body, timeout=30)
            for _ in range(2)
        ]
        assert embedded[1].headers.get("x-tollgate-cache") == "hit"
        assert embedded[1].json() == embedded[0].json()
        assert rig.wait_for_record(lambda r: r["operation"] == "embeddings" and r["cache"] == "hit")


def tollgate_update(work, system: str, *options: str):
    from tests.support.processes import tollgate

    env = {"TOLLGATE_REGISTRY": str(work / "systems.json")}
    return tollgate("systems", "update", system, *options, env=env)


async def test_redis_keeps_answers_within_the_entry_bound_and_purges_by_prefix() -> None:
    from shared.cache.store_redis import RedisAnswers
    from shared.storage.redis_client import redis_client

    redis.Redis.from_url(REDIS_URL).ping()  # no Redis is a failure here, never a skip
    client = redis_client(REDIS_URL)
    store = RedisAnswers(client, 1_000)
    scope = f"s:unit-{uuid.uuid4().hex[:8]}"
    store.put_soon(scope_prefix(scope + ":1") + "a", b'{"kept":1}', 60)
    store.put_soon(scope_prefix(scope + ":1") + "b", b"x" * 2_000, 60)  # too large
    await store.aclose()
    kept = await store.get(scope_prefix(scope + ":1") + "a")
    assert kept is not None and json.loads(kept.answer) == {"kept": 1}
    assert await store.get(scope_prefix(scope + ":1") + "b") is None
    assert await store.purge([scope_prefix(scope)]) == 1
    assert await store.get(scope_prefix(scope + ":1") + "a") is None
    await client.aclose()


async def test_a_redis_that_cannot_answer_makes_misses_not_failures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from shared.cache.store_redis import RedisAnswers
    from shared.storage.redis_client import redis_client
    from tests.support.processes import free_port

    client = redis_client(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    store = RedisAnswers(client, 1_000)
    assert await store.get("tg:cache:x:faq:k") is None
    store.put_soon("tg:cache:x:faq:k", b"{}", 60)
    await store.aclose()  # the failed keep is logged, not raised
    await client.aclose()
    assert any("response cache lookup failed" in r.getMessage() for r in caplog.records)
