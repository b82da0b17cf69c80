"""The Redis limit store's batching (shared/limits/redis_batch.py), against real Redis: calls of
one moment share a round trip, lost scripts are loaded again, and an admission whose request
is cancelled while it travels gives back what it took."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from redis.asyncio import Redis

from shared.limits.config import Limits, Scope
from shared.limits.plan import Plan, plan_for
from shared.limits.store_redis import RedisLimitStore
from shared.storage.redis_client import redis_client

REDIS_URL = "redis://127.0.0.1:6379/0"
T0 = 1_790_000_000_000


@pytest.fixture
async def client() -> AsyncIterator[Redis]:
    redis = redis_client(REDIS_URL)
    await redis.ping()  # no Redis is a failure, never a skip
    yield redis
    await redis.aclose()


def plan(limits: Limits) -> Plan:
    system = f"b-{uuid.uuid4().hex[:10]}"
    return plan_for(system, [Scope("s", limits)], datetime(2026, 11, 25, tzinfo=UTC), 30_000)


async def calls(client: Redis) -> dict[str, int]:
    """Calls per command so far (the commands scripts run inside Redis count too)."""
    info = await client.info("commandstats")
    return {name: int(stats["calls"]) for name, stats in info.items()}


def spy_on_pipelines(client: Redis, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    made: list[int] = []
    pipeline = client.pipeline

    def counted(*args: Any, **kwargs: Any) -> Any:
        made.append(1)
        return pipeline(*args, **kwargs)

    monkeypatch.setattr(client, "pipeline", counted)
    return made


async def test_admissions_of_one_moment_share_one_round_trip(
    client: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = RedisLimitStore(client)
    p = plan(Limits(rpm=50, tpm=10_000))
    await store.admit(p, "warm", 1, T0)  # the script is loaded
    pipelines = spy_on_pipelines(client, monkeypatch)
    before = await calls(client)
    results = await asyncio.gather(*(store.admit(p, f"r{i}", 10, T0) for i in range(80)))
    after = await calls(client)
    assert [r.admitted for r in results].count(True) == 49  # exactly the limit, "warm" included
    assert len(pipelines) == 1
    # One EVALSHA each, and no SCRIPT EXISTS (or any other script command) added per batch.
    grew = {name: n - before.get(name, 0) for name, n in after.items() if n != before.get(name)}
    assert grew["cmdstat_evalsha"] == 80
    assert not [name for name in grew if name.startswith(("cmdstat_script", "cmdstat_eval|"))]


async def test_scripts_lost_by_redis_are_loaded_again(client: Redis) -> None:
    store = RedisLimitStore(client)
    p = plan(Limits(tpm=1000))
    assert (await store.admit(p, "a", 100, T0)).admitted
    await client.script_flush()  # as after a restart or a failover
    second = await store.admit(p, "b", 100, T0 + 1)
    assert second.admitted and second.states[0].remaining == 800
    await store.settle(p, "b", -50)
    third = await store.admit(p, "c", 100, T0 + 2)
    assert third.states[0].remaining == 750


async def test_a_cancelled_admission_gives_back_its_tokens_and_lease(client: Redis) -> None:
    store = RedisLimitStore(client)
    p = plan(Limits(tpm=1000, concurrency=1))
    pending = asyncio.ensure_future(store.admit(p, "gone", 900, T0))
    await asyncio.sleep(0)  # queued in the batch, not yet answered
    pending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pending
    for _ in range(100):  # the refund travels in a batch of its own
        await asyncio.sleep(0.01)
        late = await store.admit(p, f"late-{_}", 900, T0 + 1)
        if late.admitted:
            break
    states = zip(p.checks, late.states, strict=True)
    remaining = {check.kind: state.remaining for check, state in states}
    assert late.admitted and remaining == {"conc": 0, "tpm": 100}
    await store.aclose()
