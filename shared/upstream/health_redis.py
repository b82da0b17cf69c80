"""Deployment health in Redis, so that every instance sees a tripped breaker at once.

One hash per deployment (`tg:h:{name}`), each change one small script on that key alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.upstream.health import HEALTHY, Health

_FIELDS = ("cool", "open", "trial", "failures")
_LUA = Path(__file__).with_name("lua")
_CLAIM = (_LUA / "trial_claim.lua").read_text(encoding="utf-8")
_FAILURE = (_LUA / "failure.lua").read_text(encoding="utf-8")
_COOLDOWN = (_LUA / "cooldown.lua").read_text(encoding="utf-8")


def _key(name: str) -> str:
    return f"tg:h:{{{name}}}"


class RedisHealthStore:
    """Errors propagate as RedisError: the balancer then falls back to what it last saw."""

    def __init__(self, client: Redis):
        self._client = client
        self._claim = client.register_script(_CLAIM)
        self._failure = client.register_script(_FAILURE)
        self._cooldown = client.register_script(_COOLDOWN)

    async def view(self, names: list[str], now_ms: int) -> dict[str, Health]:
        pipe = self._client.pipeline(transaction=False)
        for name in names:
            pipe.hmget(_key(name), *_FIELDS)
        replies = await pipe.execute()
        return {name: _health(reply) for name, reply in zip(names, replies, strict=True)}

    async def claim_trial(self, name: str, now_ms: int, hold_ms: int) -> bool:
        return bool(await self._claim(keys=[_key(name)], args=[now_ms, hold_ms]))

    async def failure(self, name: str, now_ms: int, threshold: int, open_ms: int) -> Health:
        reply = await self._failure(keys=[_key(name)], args=[now_ms, threshold, open_ms])
        return _health(reply)

    async def cooldown(self, name: str, until_ms: int) -> None:
        await self._cooldown(keys=[_key(name)], args=[until_ms])

    async def success(self, name: str) -> None:
        await self._client.hset(_key(name), mapping={"open": 0, "trial": 0, "failures": 0})


def _health(reply: list[Any]) -> Health:
    if not any(reply):
        return HEALTHY
    cool, opened, trial, failures = (int(v or 0) for v in reply)
    return Health(cool, opened, trial, failures)


__all__ = ["RedisError", "RedisHealthStore"]
