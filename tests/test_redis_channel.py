"""The limits' own Redis connection (shared/limits/redis_channel.py), against real Redis: calls
made together share one connection, lost scripts and lost connections are recovered, and an
admission whose request is cancelled in flight gives back what it took."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from redis.exceptions import AuthenticationError, ResponseError

from shared.limits.config import Limits, Scope
from shared.limits.plan import Plan, plan_for
from shared.limits.redis_channel import RedisChannel, pack
from shared.limits.store_redis import RedisLimitStore
from tests.support.redis_server import PrivateRedis

REDIS_URL = "redis://127.0.0.1:6379/0"
T0 = 1_790_000_000_000


@pytest.fixture
def admin() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL)
    assert client.ping()  # no Redis is a failure, never a skip
    return client


@pytest.fixture
async def store() -> AsyncIterator[RedisLimitStore]:
    limits = RedisLimitStore(RedisChannel(REDIS_URL))
    yield limits
    await limits.aclose()


def plan(limits: Limits) -> Plan:
    system = f"b-{uuid.uuid4().hex[:10]}"
    return plan_for(system, [Scope("s", limits)], datetime(2026, 11, 25, tzinfo=UTC), 30_000)


def test_commands_are_packed_as_resp_arrays() -> None:
    assert pack(("EVALSHA", "ab", 1, "k", "é")) == (
        b"*5\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$1\r\n1\r\n$1\r\nk\r\n$2\r\n\xc3\xa9\r\n"
    )


async def test_calls_made_together_share_one_connection(
    store: RedisLimitStore, admin: redis.Redis
) -> None:
    p = plan(Limits(rpm=50, tpm=10_000))
    before = admin.info("clients")["connected_clients"]
    results = await asyncio.gather(*(store.admit(p, f"r{i}", 10, T0) for i in range(80)))
    assert [r.admitted for r in results].count(True) == 50  # exactly the limit
    assert admin.info("clients")["connected_clients"] == before + 1


async def test_scripts_lost_by_redis_are_loaded_again(
    store: RedisLimitStore, admin: redis.Redis
) -> None:
    p = plan(Limits(tpm=1000))
    assert (await store.admit(p, "a", 100, T0)).admitted
    admin.script_flush()  # as after a restart or a failover
    second = await store.admit(p, "b", 100, T0 + 1)
    assert second.admitted and second.states[0].remaining == 800
    await store.settle(p, "b", -50)
    third = await store.admit(p, "c", 100, T0 + 2)
    assert third.states[0].remaining == 750


async def test_a_dropped_connection_is_reopened_for_the_next_call(
    store: RedisLimitStore, admin: redis.Redis
) -> None:
    p = plan(Limits(tpm=1000))
    assert (await store.admit(p, "a", 100, T0)).admitted
    for client in admin.client_list():
        if client["cmd"] == "evalsha":
            admin.client_kill_filter(_id=client["id"])
    await asyncio.sleep(0.05)
    again = await store.admit(p, "b", 100, T0 + 1)
    assert again.admitted and again.states[0].remaining == 800


async def test_a_cancelled_admission_gives_back_its_tokens_and_lease(
    store: RedisLimitStore,
) -> None:
    p = plan(Limits(tpm=1000, concurrency=1))
    pending = asyncio.ensure_future(store.admit(p, "gone", 900, T0))
    await asyncio.sleep(0)  # sent, not yet answered
    pending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pending
    for attempt in range(100):  # the refund follows the admission's reply
        await asyncio.sleep(0.01)
        late = await store.admit(p, f"late-{attempt}", 900, T0 + 1)
        if late.admitted:
            break
    states = zip(p.checks, late.states, strict=True)
    remaining = {check.kind: state.remaining for check, state in states}
    assert late.admitted and remaining == {"conc": 0, "tpm": 100}


async def test_signs_in_with_the_urls_user_and_password(tmp_path: Path) -> None:
    users = ("user default off", "user limits on >s3cret ~* &* +@all")
    private = PrivateRedis(tmp_path, users, admin=("limits", "s3cret"))
    private.start()
    port = private.port
    try:
        good = RedisChannel(f"redis://limits:s3cret@127.0.0.1:{port}/3")
        assert await good.call("SET", "k", "v") is not None
        assert await good.call("GET", "k") == b"v"
        await good.aclose()
        bad = RedisChannel(f"redis://limits:wrong@127.0.0.1:{port}")
        with pytest.raises(AuthenticationError) as refused:
            await bad.call("PING")
        assert "wrong" not in str(refused.value)  # Redis's answer, never the password
        await bad.aclose()
    finally:
        private.stop()


async def test_error_replies_are_raised_as_response_errors() -> None:
    channel = RedisChannel(REDIS_URL)
    with pytest.raises(ResponseError, match="NOSCRIPT"):
        await channel.call("EVALSHA", "0" * 40, 0)
    await channel.aclose()
