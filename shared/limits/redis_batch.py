"""Script calls made in one turn of the event loop share one pipelined round trip to Redis.

Under load, one request's admission and other requests' settlements travel together: one
connection checkout, one write, one read for all of them. Scripts are called by their SHA
alone (loaded once, and again when Redis answers NOSCRIPT after a restart), so a batch is
one round trip, never two.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, RedisError

from shared.limits.store import StoreUnavailable

REDIS_FAILURES = (RedisError, OSError, TimeoutError)


@dataclass
class _Call:
    script: AsyncScript
    keys: list[str]
    args: list[Any]
    answer: asyncio.Future[Any] = field(repr=False)


class ScriptBatch:
    def __init__(self, client: Redis):
        self._client = client
        self._queue: list[_Call] = []
        self._sending: set[asyncio.Task[None]] = set()

    def submit(self, script: AsyncScript, keys: list[str], args: list[Any]) -> asyncio.Future[Any]:
        """The script's reply, once the batch it joins has been answered; StoreUnavailable
        when Redis could not run it."""
        loop = asyncio.get_running_loop()
        call = _Call(script, keys, args, loop.create_future())
        self._queue.append(call)
        if len(self._queue) == 1:
            loop.call_soon(self._send)
        return call.answer

    def _send(self) -> None:
        batch, self._queue = self._queue, []
        task = asyncio.get_running_loop().create_task(self._run(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _run(self, batch: list[_Call]) -> None:
        try:
            replies = await self._pipeline(batch)
            missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
            if missing:  # Redis lost its scripts (restarted, flushed): load them, then retry
                for script in {id(batch[i].script): batch[i].script for i in missing}.values():
                    await self._client.script_load(script.script)
                again = await self._pipeline([batch[i] for i in missing])
                for i, reply in zip(missing, again, strict=True):
                    replies[i] = reply
        except REDIS_FAILURES as exc:
            await self.drop_idle_connections()
            replies = [exc] * len(batch)
        for call, reply in zip(batch, replies, strict=True):
            if call.answer.done():
                continue
            if isinstance(reply, BaseException):
                call.answer.set_exception(StoreUnavailable(type(reply).__name__))
            else:
                call.answer.set_result(reply)

    async def _pipeline(self, batch: list[_Call]) -> list[Any]:
        pipe = self._client.pipeline(transaction=False)
        for call in batch:
            pipe.evalsha(call.script.sha, len(call.keys), *call.keys, *call.args)
        replies: list[Any] = await pipe.execute(raise_on_error=False)
        return replies

    async def drop_idle_connections(self) -> None:
        """One broken connection means its idle siblings are broken too (a restarted or failed
        over Redis): drop them, so the next request opens a fresh one instead of failing."""
        with contextlib.suppress(Exception):  # best effort; the next call reports the outage
            await self._client.connection_pool.disconnect(inuse_connections=False)

    async def drain(self) -> None:
        """Wait for batches still on their way (at shutdown)."""
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
