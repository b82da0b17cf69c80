"""Test doubles shared by Tollgate's test suites."""

from __future__ import annotations

import asyncio


class FakeClock:
    """A monotonic clock that only moves when a test sets `now`."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class GatedSecretProvider:
    """A SecretProvider whose fetches block on `gate`, to pin down races deterministically.

    Each fetch returns `value` as it was when the fetch *started*, or raises `error` if set.
    """

    def __init__(self, value: str) -> None:
        self.value = value
        self.calls = 0
        self.error: Exception | None = None
        self.gate = asyncio.Event()
        self._called = asyncio.Condition()

    async def get(self, name: str) -> str:
        value = self.value
        async with self._called:
            self.calls += 1
            self._called.notify_all()
        await self.gate.wait()
        if self.error is not None:
            raise self.error
        return value

    async def aclose(self) -> None:
        return None

    async def until_called(self, times: int) -> None:
        # Bounded, so a broken cache fails the test instead of hanging it.
        async with asyncio.timeout(5), self._called:
            await self._called.wait_for(lambda: self.calls >= times)
