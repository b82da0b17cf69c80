"""Choosing the deployment for each attempt: priority groups, weights, cooldowns, breakers."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from shared.upstream.config import PoolMember
from shared.upstream.health import HEALTHY, Health, HealthStore, MemoryHealthStore
from shared.usage.telemetry import record_breaker_opened

log = logging.getLogger("tollgate.balancer")
T = TypeVar("T")
VIEW_TTL_MS = 1000  # how stale a shared health view may be before it is read again
TRIAL_HOLD_MS = 30_000


class Balancer:
    def __init__(
        self,
        store: HealthStore,
        failure_threshold: int,
        open_seconds: float,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ):
        self._store = store
        self._local = MemoryHealthStore()  # used while a shared store is unreachable
        self._threshold = failure_threshold
        self._open_ms = int(open_seconds * 1000)
        self._clock = clock
        self._rng = rng or random.Random()
        self._seen: dict[str, tuple[int, Health]] = {}  # name -> (read at, health)

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def pick(self, pool: Sequence[PoolMember], tried: set[str]) -> PoolMember | None:
        now = self.now_ms()
        view = await self._view([m.upstream.name for m in pool], now)
        skipped = set(tried)
        while True:
            eligible = [m for m in pool if self._open_to(m, view, skipped, now)]
            if not eligible:
                return None
            top = min(m.priority for m in eligible)
            group = [m for m in eligible if m.priority == top]
            if len(group) == 1:
                member = group[0]
            else:
                member = self._rng.choices(group, weights=[m.weight for m in group])[0]
            name = member.upstream.name
            if not view[name].half_open(now) or await self._claim(name, now):
                return member
            skipped.add(name)  # another request is the half-open trial

    @staticmethod
    def _open_to(member: PoolMember, view: dict[str, Health], skipped: set[str], now: int) -> bool:
        name = member.upstream.name
        return name not in skipped and view[name].blocked_until(now) <= now

    def retry_after_ms(self, pool: Sequence[PoolMember]) -> int:
        """Until the earliest deployment of the pool may be tried again (at least 1 s)."""
        now = self.now_ms()
        waits = [
            self._seen.get(m.upstream.name, (0, HEALTHY))[1].blocked_until(now) - now for m in pool
        ]
        positive = [w for w in waits if w > 0]
        return max(min(positive), 1000) if positive else 1000

    def rate_limited(self, pool: Sequence[PoolMember]) -> bool:
        """Whether every deployment of the pool is waiting out an upstream 429 (no breaker open)."""
        now = self.now_ms()
        healths = [self._seen.get(m.upstream.name, (0, HEALTHY))[1] for m in pool]
        return all(h.cool_until_ms > now and h.open_until_ms <= now for h in healths)

    async def health_now(self, names: list[str]) -> tuple[int, dict[str, Health]]:
        """The time (ms) and each deployment's health as the next pick would see it."""
        now = self.now_ms()
        return now, await self._view(names, now)

    async def succeeded(self, name: str) -> None:
        health = self._seen.get(name, (0, HEALTHY))[1]
        if health.failures or health.open_until_ms or health.trial_until_ms:
            await self._write(name, lambda s: s.success(name))
            self._remember(name, Health(cool_until_ms=health.cool_until_ms))

    async def failed(self, name: str) -> None:
        now = self.now_ms()
        health = await self._write(
            name, lambda s: s.failure(name, now, self._threshold, self._open_ms)
        )
        self._remember(name, health)
        if health.open_until_ms > now:
            record_breaker_opened(name)
            log.warning(
                "circuit open for %s until +%d ms after %d failures",
                name,
                health.open_until_ms - now,
                health.failures,
            )

    async def cool_down(self, name: str, seconds: float) -> None:
        until = self.now_ms() + int(seconds * 1000)
        await self._write(name, lambda s: s.cooldown(name, until))
        health = self._seen.get(name, (0, HEALTHY))[1]
        self._remember(
            name, Health(until, health.open_until_ms, health.trial_until_ms, health.failures)
        )
        log.info("cooling down %s for %.1f s", name, seconds)

    async def _view(self, names: list[str], now: int) -> dict[str, Health]:
        stale = [
            n for n in names if now - self._seen.get(n, (-VIEW_TTL_MS, HEALTHY))[0] >= VIEW_TTL_MS
        ]
        if stale:
            try:
                fresh = await self._store.view(stale, now)
            except Exception as exc:  # a shared store down: go on with what is known locally
                log.warning("health store unreachable (%s)", type(exc).__name__)
                fresh = await self._local.view(stale, now)
            for name, health in fresh.items():
                self._seen[name] = (now, health)
        return {n: self._seen[n][1] for n in names}

    async def _claim(self, name: str, now: int) -> bool:
        return await self._write(name, lambda s: s.claim_trial(name, now, TRIAL_HOLD_MS))

    async def _write(self, name: str, op: Callable[[HealthStore], Awaitable[T]]) -> T:
        try:
            return await op(self._store)
        except Exception as exc:
            log.warning(
                "health store unreachable (%s); %s tracked locally", type(exc).__name__, name
            )
            return await op(self._local)

    def _remember(self, name: str, health: Health) -> None:
        self._seen[name] = (self.now_ms(), health)
