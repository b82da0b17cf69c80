"""Each upstream deployment's health: cooldowns (from 429s) and a circuit breaker.

closed -> (N consecutive failures) -> open for a cooldown -> half-open: one trial request ->
closed on success, open again on failure. The state lives in a HealthStore (this process, or
Redis so that every instance shares it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Health:
    cool_until_ms: int = 0  # no traffic before this (a 429's Retry-After)
    open_until_ms: int = 0  # breaker open until this; afterwards half-open until a success
    trial_until_ms: int = 0  # a half-open trial is in flight until this
    failures: int = 0  # consecutive failures

    def blocked_until(self, now_ms: int) -> int:
        """When this deployment may next be tried (<= now: it may be tried now)."""
        until = max(self.cool_until_ms, self.open_until_ms)
        if self.open_until_ms and self.open_until_ms <= now_ms and self.trial_until_ms > now_ms:
            until = max(until, self.trial_until_ms)
        return until

    def half_open(self, now_ms: int) -> bool:
        return 0 < self.open_until_ms <= now_ms


HEALTHY = Health()


class HealthStore(Protocol):
    async def view(self, names: list[str], now_ms: int) -> dict[str, Health]: ...

    async def claim_trial(self, name: str, now_ms: int, hold_ms: int) -> bool:
        """Take the one half-open trial; False when another request has it."""
        ...

    async def failure(self, name: str, now_ms: int, threshold: int, open_ms: int) -> Health: ...

    async def cooldown(self, name: str, until_ms: int) -> None: ...

    async def success(self, name: str) -> None: ...


class MemoryHealthStore:
    def __init__(self) -> None:
        self._state: dict[str, Health] = {}

    async def view(self, names: list[str], now_ms: int) -> dict[str, Health]:
        return {name: self._state.get(name, HEALTHY) for name in names}

    async def claim_trial(self, name: str, now_ms: int, hold_ms: int) -> bool:
        health = self._state.get(name, HEALTHY)
        if health.trial_until_ms > now_ms:
            return False
        self._state[name] = _with(health, trial_until_ms=now_ms + hold_ms)
        return True

    async def failure(self, name: str, now_ms: int, threshold: int, open_ms: int) -> Health:
        health = self._state.get(name, HEALTHY)
        failures = health.failures + 1
        trip = failures >= threshold or health.half_open(now_ms)
        opened = now_ms + open_ms if trip else health.open_until_ms
        updated = _with(health, failures=failures, open_until_ms=opened, trial_until_ms=0)
        self._state[name] = updated
        return updated

    async def cooldown(self, name: str, until_ms: int) -> None:
        health = self._state.get(name, HEALTHY)
        self._state[name] = _with(health, cool_until_ms=max(health.cool_until_ms, until_ms))

    async def success(self, name: str) -> None:
        health = self._state.get(name, HEALTHY)
        self._state[name] = Health(cool_until_ms=health.cool_until_ms)


def _with(health: Health, **changes: int) -> Health:
    values = {**health.__dict__, **changes}
    return Health(**values)
