"""The two limit stores (in-process and real Redis) give the same answers, at controlled times."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from shared.limits.config import Limits, Scope
from shared.limits.plan import WINDOW_MS, Plan, plan_for
from shared.limits.redis_channel import RedisChannel
from shared.limits.store import LimitStore
from shared.limits.store_memory import MemoryLimitStore
from shared.limits.store_redis import RedisLimitStore

T0 = 1_790_000_000_000  # a fixed "now" in ms; the scripts use it when it is not 0
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[LimitStore]:
    if request.param == "memory":
        yield MemoryLimitStore()
        return
    channel = RedisChannel(REDIS_URL)
    assert await channel.call("PING") == b"PONG"  # no Redis is a failure, never a skip
    redis_store = RedisLimitStore(channel)
    yield redis_store
    await redis_store.aclose()


def plan(limits: Limits, now: datetime | None = None) -> Plan:
    system = f"t-{uuid.uuid4().hex[:10]}"
    when = now or datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    return plan_for(system, [Scope("s", limits)], when, lease_ms=30_000)


async def admit_many(store: LimitStore, p: Plan, n: int, estimate: int, now: int) -> list[bool]:
    results = await asyncio.gather(
        *(store.admit(p, uuid.uuid4().hex, estimate, now) for _ in range(n))
    )
    return [r.admitted for r in results]


async def test_rpm_admits_exactly_the_limit_then_rolls_over(store: LimitStore) -> None:
    p = plan(Limits(rpm=60))
    assert (await admit_many(store, p, 200, 1, T0)).count(True) == 60
    refused = await store.admit(p, "late", 1, T0 + 30_000)
    assert not refused.admitted and refused.retry_after_ms == WINDOW_MS - 30_000
    assert (await store.admit(p, "next", 1, T0 + WINDOW_MS + 1)).admitted


async def test_tpm_counts_estimates_and_settles_to_actual(store: LimitStore) -> None:
    p = plan(Limits(tpm=1000))
    first = await store.admit(p, "a", 600, T0)
    assert first.admitted and first.states[0].remaining == 400
    assert not (await store.admit(p, "b", 500, T0 + 1)).admitted
    await store.settle(p, "a", -400)  # it used 200, not 600
    second = await store.admit(p, "b", 500, T0 + 2)
    assert second.admitted and second.states[0].remaining == 300


async def test_tpm_request_larger_than_the_limit_is_hopeless(store: LimitStore) -> None:
    refused = await store.admit(plan(Limits(tpm=100)), "big", 101, T0)
    assert not refused.admitted and refused.retry_after_ms == -1


async def test_tpm_retry_after_is_when_enough_tokens_expire(store: LimitStore) -> None:
    p = plan(Limits(tpm=1000))
    assert (await store.admit(p, "a", 300, T0)).admitted
    assert (await store.admit(p, "b", 500, T0 + 10_000)).admitted
    refused = await store.admit(p, "c", 600, T0 + 20_000)  # needs a and b gone
    assert refused.retry_after_ms == 10_000 + WINDOW_MS - 20_000


async def test_concurrency_cap_and_release(store: LimitStore) -> None:
    p = plan(Limits(concurrency=3))
    rids = [f"r{i}" for i in range(8)]
    results = [await store.admit(p, rid, 1, T0) for rid in rids]
    assert [r.admitted for r in results] == [True] * 3 + [False] * 5
    await store.settle(p, "r0", 0)
    assert (await store.admit(p, "again", 1, T0 + 1)).admitted


async def test_concurrency_leases_expire(store: LimitStore) -> None:
    p = plan(Limits(concurrency=1))
    assert (await store.admit(p, "crashed", 1, T0)).admitted
    assert not (await store.admit(p, "waiting", 1, T0 + 1000)).admitted
    assert (await store.admit(p, "later", 1, T0 + 30_001)).admitted  # the 30 s lease ran out


async def test_daily_quota_reserves_settles_and_renews(store: LimitStore) -> None:
    today = datetime(2026, 11, 25, 23, 0, tzinfo=UTC)
    p = plan(Limits(tokens_per_day=1000), today)
    assert (await store.admit(p, "a", 900, T0)).admitted
    refused = await store.admit(p, "b", 200, T0)
    assert not refused.admitted and refused.retry_after_ms == 3600 * 1000
    await store.settle(p, "a", -500)
    assert (await store.admit(p, "b", 200, T0)).admitted
    tomorrow = plan_for(
        p.system_id,
        [Scope("s", Limits(tokens_per_day=1000))],
        datetime(2026, 11, 26, 0, 1, tzinfo=UTC),
        30_000,
    )
    assert (await store.admit(tomorrow, "c", 1000, T0)).admitted


async def test_all_or_nothing_across_limits(store: LimitStore) -> None:
    p = plan(Limits(rpm=10, tpm=100))
    assert (await store.admit(p, "a", 90, T0)).admitted
    refused = await store.admit(p, "b", 20, T0)  # rpm fine, tpm not
    assert not refused.admitted and refused.failed_index == 1
    ok = await store.admit(p, "c", 10, T0)
    assert ok.admitted and ok.states[0].remaining == 8  # the refused request took no rpm slot


async def test_zero_limit_refuses_everything(store: LimitStore) -> None:
    assert not (await store.admit(plan(Limits(rpm=0)), "a", 1, T0)).admitted
