"""Limits shared by every instance, in Redis: one atomic Lua script per admission, batched
with the other scripts of the same moment (redis_batch).

All of a system's keys carry the hash tag `{system}`, so one script may touch them all on
a clustered Redis too. Every key expires on its own; nothing needs a sweeper.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from shared.limits.plan import WINDOW_MS, Plan
from shared.limits.redis_batch import ScriptBatch
from shared.limits.store import Admission, CheckState

_LUA = Path(__file__).with_name("lua")
ADMIT = (_LUA / "admit.lua").read_text(encoding="utf-8")
SETTLE = (_LUA / "settle.lua").read_text(encoding="utf-8")


class RedisLimitStore:
    def __init__(self, client: Redis):
        self._client = client
        self._admit = client.register_script(ADMIT)
        self._settle = client.register_script(SETTLE)
        self._batch = ScriptBatch(client)  # admissions and settlements share round trips

    async def admit(self, plan: Plan, rid: str, estimate: int, now_ms: int) -> Admission:
        keys = [c.key for c in plan.checks]
        args: list[Any] = [now_ms, rid, estimate, WINDOW_MS, len(keys)]
        for check in plan.checks:
            args += [check.kind, check.limit, check.horizon_ms]
        answer = self._batch.submit(self._admit, keys, args)
        try:
            reply = await asyncio.shield(answer)
        except asyncio.CancelledError:  # the request is gone: give back what it may have taken
            answer.add_done_callback(lambda done: self._release_orphan(done, plan, rid, estimate))
            raise
        if int(reply[0]) == 0:
            return Admission(False, int(reply[1]) - 1, int(reply[2]), ())
        values = [int(v) for v in reply[3:]]
        states = tuple(CheckState(values[i], values[i + 1]) for i in range(0, len(values), 2))
        return Admission(True, -1, 0, states)

    async def settle(self, plan: Plan, rid: str, delta: int) -> None:
        """Off the request path; under load, many settlements share one round trip."""
        await self._batch.submit(self._settle, *_settlement(plan, rid, delta))

    def _release_orphan(
        self, answer: asyncio.Future[Any], plan: Plan, rid: str, estimate: int
    ) -> None:
        if answer.cancelled() or answer.exception() is not None or int(answer.result()[0]) == 0:
            return
        refund = self._batch.submit(self._settle, *_settlement(plan, rid, -estimate))
        refund.add_done_callback(lambda done: done.cancelled() or done.exception())

    async def aclose(self) -> None:
        await self._batch.drain()
        await self._client.aclose()
        await self._client.connection_pool.disconnect()


def _settlement(plan: Plan, rid: str, delta: int) -> tuple[list[str], list[Any]]:
    return [c.key for c in plan.checks], [rid, delta, *(c.kind for c in plan.checks)]
