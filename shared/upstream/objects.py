"""Who owns each file and batch made through the gateway, and what the gateway knows of it.

Files and batches live on one upstream resource whose every caller could name them, so each
is bound to the system that made it: another system is told it does not exist. A batch input
file also remembers the public models its lines name (and the first line naming each); a batch
remembers its creator's key and those models, for its metering. In Redis when configured
(`tg:obj:{id}`), so every instance sees them; in process otherwise.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Protocol

from shared.errors import server_error

if TYPE_CHECKING:
    from redis.asyncio import Redis

RETENTION_SECONDS = 400 * 24 * 3600  # files outlive batches; a deleted one is unbound at once
_MEMORY_ENTRIES = 200_000


class ObjectOwners(Protocol):
    async def bind(self, object_id: str, entry: dict[str, Any]) -> None: ...

    async def entries(self, object_ids: list[str]) -> list[dict[str, Any] | None]: ...

    async def unbind(self, object_id: str) -> None: ...


async def entry_of(owners: ObjectOwners, object_id: str) -> dict[str, Any] | None:
    return (await owners.entries([object_id]))[0]


class MemoryObjects:
    def __init__(self) -> None:
        self._entries: OrderedDict[str, str] = OrderedDict()

    async def bind(self, object_id: str, entry: dict[str, Any]) -> None:
        self._entries[object_id] = json.dumps(entry)
        self._entries.move_to_end(object_id)
        while len(self._entries) > _MEMORY_ENTRIES:
            self._entries.popitem(last=False)

    async def entries(self, object_ids: list[str]) -> list[dict[str, Any] | None]:
        return [_parsed(self._entries.get(object_id)) for object_id in object_ids]

    async def unbind(self, object_id: str) -> None:
        self._entries.pop(object_id, None)


class RedisObjects:
    """Bindings are written before the client hears of the object, so its next call finds
    it; when Redis cannot answer, the call is refused (503), never guessed."""

    def __init__(self, client: Redis) -> None:
        self._client = client

    async def bind(self, object_id: str, entry: dict[str, Any]) -> None:
        try:
            await self._client.set(_key(object_id), json.dumps(entry), ex=RETENTION_SECONDS)
        except Exception:
            raise _unavailable() from None

    async def entries(self, object_ids: list[str]) -> list[dict[str, Any] | None]:
        if not object_ids:
            return []
        try:
            values = await self._client.mget([_key(object_id) for object_id in object_ids])
        except Exception:
            raise _unavailable() from None
        return [_parsed(value) for value in values]

    async def unbind(self, object_id: str) -> None:
        try:
            await self._client.delete(_key(object_id))
        except Exception:
            raise _unavailable() from None


def _unavailable() -> Exception:
    message = "Ownership of files and batches cannot be checked right now; retry shortly."
    return server_error(503, message, "ownership_unavailable", {"retry-after": "1"})


def _parsed(value: str | bytes | None) -> dict[str, Any] | None:
    if value is None:
        return None
    entry = json.loads(value)
    return entry if isinstance(entry, dict) else None


def _key(object_id: str) -> str:
    return f"tg:obj:{object_id}"
