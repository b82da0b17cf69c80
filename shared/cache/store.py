"""Where kept answers live: the store's interface, and the in-process store used without Redis
(one per gateway process, bounded in bytes, least recently used evicted first)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Kept:
    answer: bytes  # the whole answer, as a non-streamed call gets it
    age_seconds: int  # since it was kept


class AnswerStore(Protocol):
    max_entry_bytes: int

    async def get(self, key: str) -> Kept | None: ...

    def put_soon(self, key: str, answer: bytes, ttl_seconds: int) -> None: ...

    async def purge(self, prefixes: list[str]) -> int: ...

    async def aclose(self) -> None: ...


class MemoryAnswers:
    """Answers kept in this process: gone at restart, never seen by other instances."""

    def __init__(
        self, max_bytes: int, max_entry_bytes: int, clock: Callable[[], float] = time.monotonic
    ):
        self.max_bytes, self.max_entry_bytes = max_bytes, max_entry_bytes
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, float, bytes]] = OrderedDict()
        self.bytes = 0

    async def get(self, key: str) -> Kept | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        kept_at, expires, answer = entry
        now = self._clock()
        if now >= expires:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return Kept(answer, int(now - kept_at))

    def put_soon(self, key: str, answer: bytes, ttl_seconds: int) -> None:
        size = len(answer) + len(key)
        if size > self.max_entry_bytes or size > self.max_bytes:
            return
        self._drop(key)
        now = self._clock()
        self._entries[key] = (now, now + ttl_seconds, answer)
        self.bytes += size
        while self.bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    async def purge(self, prefixes: list[str]) -> int:
        doomed = [k for k in self._entries if k.startswith(tuple(prefixes))]
        for key in doomed:
            self._drop(key)
        return len(doomed)

    async def aclose(self) -> None:
        self._entries.clear()
        self.bytes = 0

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.bytes -= len(entry[2]) + len(key)
