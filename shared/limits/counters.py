"""A system's live limit counters, read from Redis exactly as the gateways keep them.

The keys are the ones shared/limits/plan.py names; shared/limits/lua/admit.lua keeps them:

- rpm, tpm: a sorted set of request ids scored by admission time (Redis's clock, ms), each
  one's amount in `<key>:n`. What counts is what is newer than the 60 s window: admit.lua drops
  entries at or before `now - 60 s`, but only when the next request comes, so the running
  `<key>:sum` may still hold older ones and is not read here.
- concurrency: a sorted set of leases scored by their expiry; the ones not yet expired are in
  flight.
- quotas: one counter per calendar day or month of TOLLGATE_QUOTA_TIMEZONE.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.limits.config import Scope
from shared.limits.plan import WINDOW_MS, Check, plan_for

if TYPE_CHECKING:
    from redis.asyncio import Redis


@dataclass(frozen=True)
class Counter:
    scope: str  # the plan's scope name: "s", "m:<model>", "k:<key id>"
    check: Check
    used: int
    resets_in_ms: int | None  # window: until its oldest entry leaves; quota: until it renews


async def read_counters(
    client: Redis, system_id: str, scopes: list[Scope], local_now: datetime, lease_ms: int
) -> tuple[int, list[Counter]]:
    """Redis's time (ms) and every counter of `scopes`, read in one round trip (two for tpm)."""
    seconds, micros = await client.time()
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    checks = [
        (scope.name, check)
        for scope in scopes
        for check in plan_for(system_id, [scope], local_now, lease_ms).checks
    ]
    pipe = client.pipeline(transaction=False)
    for _, check in checks:
        _queue(pipe, check, now_ms)
    replies = await pipe.execute()
    counters = []
    for (scope, check), reply in zip(checks, replies, strict=True):
        used, resets = await _reading(client, check, reply, now_ms)
        counters.append(Counter(scope, check, used, resets))
    return now_ms, counters


def _queue(pipe: Any, check: Check, now_ms: int) -> None:
    if check.kind in ("rpm", "tpm"):
        pipe.zrangebyscore(check.key, f"({now_ms - WINDOW_MS}", "+inf", withscores=True)
    elif check.kind == "conc":
        pipe.zcount(check.key, f"({now_ms}", "+inf")
    else:
        pipe.get(check.key)


async def _reading(client: Redis, check: Check, reply: Any, now_ms: int) -> tuple[int, int | None]:
    if check.kind == "conc":
        return int(reply), None
    if check.kind in ("quota", "budget"):  # a budget's in cost units
        return int(reply or 0), check.horizon_ms
    resets = int(reply[0][1]) + WINDOW_MS - now_ms if reply else None
    if check.kind == "rpm":
        return len(reply), resets
    members = [member for member, _ in reply]
    amounts = await client.hmget(f"{check.key}:n", members) if members else []
    return sum(int(amount or 0) for amount in amounts), resets
