"""Who owns each stored response, and which deployment holds it.

A response id is valid on the deployment (and key) that created it, and every caller of that
upstream key could name it. So each response created through the gateway is bound to the
calling system and its deployment: a follow-up naming another system's response is refused as
if the response did not exist, and one naming its own goes to the deployment that holds it. In
Redis when configured, so every instance sees it; in process otherwise. Bindings expire with the
upstream's retention of stored responses (30 days).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, NamedTuple, Protocol

from shared.errors import server_error

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("tollgate.owners")
RETENTION_SECONDS = 30 * 24 * 3600
_MEMORY_ENTRIES = 200_000


class Owner(NamedTuple):
    system: str
    deployment: str


class ResponseOwners(Protocol):
    def remember_soon(self, response_id: str, system: str, deployment: str) -> None: ...

    async def owner(self, response_id: str) -> Owner | None: ...


class MemoryOwners:
    def __init__(self) -> None:
        self._entries: OrderedDict[str, tuple[float, Owner]] = OrderedDict()

    def remember_soon(self, response_id: str, system: str, deployment: str) -> None:
        self._entries[response_id] = (
            time.monotonic() + RETENTION_SECONDS,
            Owner(system, deployment),
        )
        self._entries.move_to_end(response_id)
        while len(self._entries) > _MEMORY_ENTRIES:
            self._entries.popitem(last=False)

    async def owner(self, response_id: str) -> Owner | None:
        entry = self._entries.get(response_id)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]


class RedisOwners:
    """One key per response (`tg:resp:{id}` = `system deployment`); a failed write is logged
    (its follow-ups then answer 404, never another system's context)."""

    def __init__(self, client: Redis) -> None:
        self._client = client
        self._writing: set[asyncio.Task[None]] = set()

    def remember_soon(self, response_id: str, system: str, deployment: str) -> None:
        task = asyncio.get_running_loop().create_task(self._write(response_id, system, deployment))
        self._writing.add(task)
        task.add_done_callback(self._writing.discard)

    async def _write(self, response_id: str, system: str, deployment: str) -> None:
        try:
            await self._client.set(
                _key(response_id), f"{system} {deployment}", ex=RETENTION_SECONDS
            )
        except Exception as exc:  # Redis down: the binding is lost, never wrong
            log.error("could not bind a response to its system: %s", type(exc).__name__)

    async def owner(self, response_id: str) -> Owner | None:
        try:
            value = await self._client.get(_key(response_id))
        except Exception:  # never guess an owner: the caller retries
            message = "Response ownership cannot be checked right now; retry shortly."
            raise server_error(
                503, message, "ownership_unavailable", {"retry-after": "1"}
            ) from None
        if value is None:
            return None
        system, _, deployment = (value.decode() if isinstance(value, bytes) else value).partition(
            " "
        )
        return Owner(system, deployment)


def _key(response_id: str) -> str:
    return f"tg:resp:{response_id}"
