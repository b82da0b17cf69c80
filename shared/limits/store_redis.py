"""Limits shared by every instance, in Redis: one atomic Lua script per admission and one per
settlement, on the limits' own pipelined connection (redis_channel).

All of a system's keys carry the hash tag `{system}`, so one script may touch them all on
a clustered Redis too. Every key expires on its own; nothing needs a sweeper.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError, ResponseError

from shared.limits.plan import WINDOW_MS, Plan
from shared.limits.redis_channel import RedisChannel
from shared.limits.store import Admission, CheckState, StoreUnavailable

_LUA = Path(__file__).with_name("lua")


class RedisLimitStore:
    def __init__(self, channel: RedisChannel):
        self._channel = channel
        self._refunds: set[asyncio.Task[dict[str, int]]] = set()

    async def admit(
        self, plan: Plan, rid: str, estimate: int, now_ms: int, cost: int = 0
    ) -> Admission:
        keys = [c.key for c in plan.checks]
        args: list[Any] = [now_ms, rid, estimate, WINDOW_MS, len(keys), cost]
        for check in plan.checks:
            args += [check.kind, check.limit, check.horizon_ms]

        def orphaned(reply: Any) -> None:  # the request is gone: give back what it took
            if isinstance(reply, list) and int(reply[0]) == 1:
                refund = asyncio.get_running_loop().create_task(
                    self.settle(plan, rid, -estimate, -cost)
                )
                self._refunds.add(refund)
                refund.add_done_callback(self._refunds.discard)

        reply = await self._run(ADMIT, keys, args, orphaned)
        if int(reply[0]) == 0:
            return Admission(False, int(reply[1]) - 1, int(reply[2]), (), int(reply[3]))
        values = [int(v) for v in reply[3:]]
        states = tuple(CheckState(values[i], values[i + 1]) for i in range(0, len(values), 2))
        return Admission(True, -1, 0, states)

    async def settle(self, plan: Plan, rid: str, delta: int, cost: int = 0) -> dict[str, int]:
        keys = [c.key for c in plan.checks]
        reply = await self._run(SETTLE, keys, [rid, delta, cost, *(c.kind for c in plan.checks)])
        return _budgets(plan, reply)

    async def charge(self, plan: Plan, amount: int, cost: int = 0) -> dict[str, int]:
        counters = [c for c in plan.checks if c.kind in ("quota", "budget")]
        if not counters:
            return {}
        args: list[Any] = [amount, cost]
        for check in counters:
            args += [check.kind, check.horizon_ms]
        return _budgets(plan, await self._run(CHARGE, [c.key for c in counters], args))

    async def aclose(self) -> None:
        if self._refunds:
            await asyncio.gather(*self._refunds, return_exceptions=True)
        await self._channel.aclose()

    async def _run(
        self,
        script: Script,
        keys: list[str],
        args: list[Any],
        orphaned: Callable[[Any], None] | None = None,
    ) -> Any:
        """The script's reply, by its SHA (loaded once more when Redis has lost it)."""
        call = ("EVALSHA", script.sha, len(keys), *keys, *args)
        try:
            try:
                return await self._channel.call(*call, orphaned=orphaned)
            except ResponseError as exc:
                if not str(exc).startswith("NOSCRIPT"):
                    raise
            await self._channel.call("SCRIPT", "LOAD", script.text)
            return await self._channel.call(*call, orphaned=orphaned)
        except (RedisError, OSError, TimeoutError) as exc:
            raise StoreUnavailable(type(exc).__name__) from exc


@dataclass(frozen=True)
class Script:
    text: str
    sha: str


def _script(name: str) -> Script:
    text = (_LUA / name).read_text(encoding="utf-8")
    return Script(text, hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest())


def _budgets(plan: Plan, reply: Any) -> dict[str, int]:
    """The budget counters' values a script answered, by key, in the plan's order."""
    keys = [c.key for c in plan.checks if c.kind == "budget"]
    return dict(zip(keys, (int(v) for v in reply or []), strict=False))


ADMIT = _script("admit.lua")
SETTLE = _script("settle.lua")
CHARGE = _script("charge.lua")
