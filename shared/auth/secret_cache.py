"""In-process TTL cache in front of a SecretProvider, with single-flight fetches per name."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.auth.secrets import SecretProvider

DEFAULT_TTL_SECONDS = 600.0
# When a routine re-read fails, keep using the cached value and try again after this long.
STALE_RETRY_SECONDS = 30.0

log = logging.getLogger("tollgate.secrets")


@dataclass
class _Entry:
    value: str = field(repr=False)
    fetched_at: float


@dataclass
class _Flight:
    task: asyncio.Task[str]
    # True when started by refresh(), i.e. after an upstream rejected the cached value.
    forced: bool


class CachedSecrets:
    """Caches secret values for `ttl_seconds`; one provider call per name at a time."""

    def __init__(
        self,
        provider: SecretProvider,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._provider = provider
        self._ttl = ttl_seconds
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._flights: dict[str, _Flight] = {}

    async def get(self, name: str) -> str:
        entry = self._entries.get(name)
        if entry is not None and self._clock() - entry.fetched_at < self._ttl:
            return entry.value
        flight = self._flights.get(name) or self._start(name, forced=False)
        return await _join(flight)

    async def refresh(self, name: str, stale: str) -> str:
        """Return a value newer than `stale` (just rejected by an upstream); fetch at most once."""
        while True:
            entry = self._entries.get(name)
            if entry is not None and entry.value != stale:
                return entry.value  # someone already refreshed
            flight = self._flights.get(name)
            if flight is None:
                return await _join(self._start(name, forced=True))
            if flight.forced:
                return await _join(flight)
            # A TTL fetch may have started before the rotation: let it land, then look again.
            await _join(flight)

    async def aclose(self) -> None:
        for flight in list(self._flights.values()):
            flight.task.cancel()
        self._flights.clear()
        self._entries.clear()
        await self._provider.aclose()

    def __repr__(self) -> str:
        cached = sorted(self._entries)
        return f"CachedSecrets({self._provider!r}, ttl_seconds={self._ttl}, cached={cached})"

    def _start(self, name: str, forced: bool) -> _Flight:
        flight = _Flight(asyncio.ensure_future(self._load(name, forced)), forced)
        flight.task.add_done_callback(_consume_exception)
        self._flights[name] = flight
        return flight

    async def _load(self, name: str, forced: bool) -> str:
        try:
            value = await self._provider.get(name)
        except Exception as exc:
            entry = self._entries.get(name)
            if forced or entry is None:
                raise
            # The vault blinked at TTL expiry: the cached key most likely still works, and an
            # upstream 401 would force a real re-read anyway.
            log.warning(
                "secret %s could not be re-read (%s); using the cached value",
                name,
                type(exc).__name__,
            )
            entry.fetched_at = self._clock() - self._ttl + STALE_RETRY_SECONDS
            return entry.value
        else:
            self._entries[name] = _Entry(value, self._clock())
            return value
        finally:
            # Unregister before the task completes, so waiters that resume see no stale flight.
            flight = self._flights.get(name)
            if flight is not None and flight.task is asyncio.current_task():
                del self._flights[name]


async def _join(flight: _Flight) -> str:
    # shield: one caller being cancelled must not cancel the fetch the others are waiting on.
    return await asyncio.shield(flight.task)


def _consume_exception(task: asyncio.Task[str]) -> None:
    # Marks the exception as retrieved when every waiter was cancelled, avoiding asyncio's warning.
    if not task.cancelled():
        task.exception()
