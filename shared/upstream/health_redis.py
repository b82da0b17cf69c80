"""Deployment health in Redis, so that every instance sees a tripped breaker at once.

One hash per deployment (`tg:h:{name}`), each change one small script on that key alone.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.upstream.health import HEALTHY, Health

_FIELDS = ("cool", "open", "trial", "failures")

_CLAIM = """
if tonumber(redis.call('HGET', KEYS[1], 'trial') or '0') > tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'trial', tonumber(ARGV[1]) + tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], 86400000)
return 1
"""
_FAILURE = """
local now, threshold, open_ms = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local opened = tonumber(redis.call('HGET', KEYS[1], 'open') or '0')
if failures >= threshold or (opened > 0 and opened <= now) then
  opened = now + open_ms
  redis.call('HSET', KEYS[1], 'open', opened)
end
redis.call('HSET', KEYS[1], 'trial', 0)
redis.call('PEXPIRE', KEYS[1], 86400000)
return {tonumber(redis.call('HGET', KEYS[1], 'cool') or '0'), opened, 0, failures}
"""
_COOLDOWN = """
if tonumber(redis.call('HGET', KEYS[1], 'cool') or '0') < tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'cool', ARGV[1])
end
redis.call('PEXPIRE', KEYS[1], 86400000)
return 1
"""


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
