"""Answers kept in Redis, shared by every instance: one string per key, expiring with its
TTL, each no larger than the configured bound. A Redis that cannot answer makes a lookup a
miss and a keep a no-op, logged: the cache never fails a request."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from shared.cache.store import Kept

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("tollgate.cache")
_LOG_EVERY_SECONDS = 10.0
_SCAN_COUNT = 500


class RedisAnswers:
    def __init__(self, client: Redis, max_entry_bytes: int) -> None:
        self._client, self.max_entry_bytes = client, max_entry_bytes
        self._pending: set[asyncio.Task[None]] = set()
        self._last_log = 0.0

    async def get(self, key: str) -> Kept | None:
        try:
            value = await self._client.get(key)
        except Exception as exc:
            self._log("lookup", exc)
            return None
        if not isinstance(value, bytes):
            return None
        stamp, _, answer = value.partition(b"\n")
        try:
            age = max(int(time.time() - int(stamp) / 1000), 0)
        except ValueError:
            return None
        return Kept(answer, age)

    def put_soon(self, key: str, answer: bytes, ttl_seconds: int) -> None:
        if len(answer) + len(key) > self.max_entry_bytes:
            return
        value = b"%d\n" % int(time.time() * 1000) + answer
        task = asyncio.get_running_loop().create_task(self._put(key, value, ttl_seconds))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _put(self, key: str, value: bytes, ttl_seconds: int) -> None:
        try:
            await self._client.set(key, value, ex=ttl_seconds)
        except Exception as exc:
            self._log("keep", exc)

    async def purge(self, prefixes: list[str]) -> int:
        """Delete every key under the prefixes (SCAN, so Redis is never blocked for long)."""
        removed = 0
        for prefix in prefixes:
            batch: list[bytes] = []
            async for key in self._client.scan_iter(match=prefix + "*", count=_SCAN_COUNT):
                batch.append(key)
                if len(batch) >= _SCAN_COUNT:
                    removed += await self._client.unlink(*batch)
                    batch = []
            if batch:
                removed += await self._client.unlink(*batch)
        return removed

    async def aclose(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    def _log(self, what: str, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._last_log >= _LOG_EVERY_SECONDS:
            self._last_log = now
            log.error("response cache %s failed (%s): serving without it", what, type(exc).__name__)
