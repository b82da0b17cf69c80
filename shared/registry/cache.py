"""Keeps each instance's registry snapshot fresh without slowing requests down.

A snapshot older than the refresh interval is refreshed in the background while
requests go on using it; one older than three intervals (an idle instance) is
refreshed before the request is answered, so a change reaches every instance
within 3 x refresh interval at worst.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable

from shared.errors import server_error
from shared.registry.store import RegistryStore
from shared.registry.systems import Registry, RegistryError

log = logging.getLogger("tollgate.registry")


class RegistryCache:
    def __init__(
        self,
        store: RegistryStore,
        refresh_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._store = store
        self._refresh = refresh_seconds
        self.refresh_seconds = refresh_seconds
        self._clock = clock
        self._registry: Registry | None = None
        self._etag: str | None = None
        self._loaded_at = 0.0
        self._inflight: asyncio.Task[None] | None = None
        self.readable = False  # the last read of the store worked and its document parsed

    async def current(self) -> Registry:
        age = self._clock() - self._loaded_at
        if self._registry is None or age > 3 * self._refresh:
            await self._refresh_shared()
        elif age > self._refresh and self._inflight is None:
            self._inflight = asyncio.create_task(self._load())
            self._inflight.add_done_callback(self._clear_inflight)
        if self._registry is None:
            raise server_error(503, "The systems registry is unavailable.", "registry_unavailable")
        return self._registry

    async def check(self) -> bool:
        """Read the store now: is the registry readable, and is a snapshot loaded?"""
        await self._refresh_shared()
        return self.readable and self._registry is not None

    async def aclose(self) -> None:
        if self._inflight is not None:
            self._inflight.cancel()
        await self._store.aclose()

    async def _refresh_shared(self) -> None:
        if self._inflight is None:
            self._inflight = asyncio.create_task(self._load())
            self._inflight.add_done_callback(self._clear_inflight)
        await asyncio.shield(self._inflight)

    def _clear_inflight(self, _task: asyncio.Task[None]) -> None:
        self._inflight = None

    async def _load(self) -> None:
        try:
            stored = await self._store.read(self._etag)
        except Exception as exc:  # keep serving the last good snapshot
            log.error("registry read failed: %s", type(exc).__name__)
            self.readable = False
            return
        self.readable = True  # unless the document read is rejected
        if stored is not None:
            self._apply(stored.data, stored.etag)
        self._loaded_at = self._clock()

    def _apply(self, data: bytes | None, etag: str | None) -> None:
        if data is None:
            self._registry, self._etag = Registry.empty(), None
            return
        try:
            registry = Registry.parse(json.loads(data))
        except (ValueError, RegistryError) as exc:
            log.error("registry document rejected, keeping the previous one: %s", exc)
            self.readable = False
            return
        self._registry, self._etag = registry, etag
