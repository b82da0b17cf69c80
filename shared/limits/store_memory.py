"""Limits kept in this process: the default with no Redis, and the fail-open fallback."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from shared.limits.plan import WINDOW_MS, Check, Plan
from shared.limits.store import Admission, CheckState


@dataclass
class _Log:
    """Entries (rid -> (time ms, amount)) in time order, with their running total."""

    entries: OrderedDict[str, tuple[int, int]] = field(default_factory=OrderedDict)
    total: int = 0

    def expire(self, before_ms: int) -> None:
        while self.entries:
            rid, (at, amount) = next(iter(self.entries.items()))
            if at > before_ms:
                return
            del self.entries[rid]
            self.total -= amount

    def wait_to_free(self, need: int, now_ms: int, window_ms: int) -> int:
        freed = 0
        for at, amount in self.entries.values():
            freed += amount
            if freed >= need:
                return at + window_ms - now_ms
        return window_ms

    def oldest_reset(self, now_ms: int, window_ms: int) -> int:
        if not self.entries:
            return 0
        return next(iter(self.entries.values()))[0] + window_ms - now_ms


class MemoryLimitStore:
    def __init__(self) -> None:
        self._logs: dict[str, _Log] = {}
        self._quotas: dict[str, int] = {}

    async def admit(
        self, plan: Plan, rid: str, estimate: int, now_ms: int, cost: int = 0
    ) -> Admission:
        for index, check in enumerate(plan.checks):
            asked = cost if check.kind == "budget" else estimate
            wait = self._refusal(check, asked, now_ms)
            if wait is not None:
                return Admission(False, index, wait, (), self._used(check))
        return Admission(
            True,
            -1,
            0,
            tuple(
                self._take(c, rid, cost if c.kind == "budget" else estimate, now_ms)
                for c in plan.checks
            ),
        )

    async def settle(self, plan: Plan, rid: str, delta: int, cost: int = 0) -> dict[str, int]:
        for check in plan.checks:
            if check.kind == "conc":
                log = self._logs.get(check.key)
                if log is not None and rid in log.entries:
                    del log.entries[rid]
                    log.total -= 1
            elif check.kind == "tpm":
                log = self._logs.get(check.key)
                if log is not None and rid in log.entries:
                    at, amount = log.entries[rid]
                    log.entries[rid] = (at, amount + delta)
                    log.total += delta
            elif check.kind in ("quota", "budget"):
                change = cost if check.kind == "budget" else delta
                self._quotas[check.key] = self._quotas.get(check.key, 0) + change
        return self._budgets(plan)

    async def charge(self, plan: Plan, amount: int, cost: int = 0) -> dict[str, int]:
        for check in plan.checks:
            if check.kind in ("quota", "budget"):
                change = cost if check.kind == "budget" else amount
                self._quotas[check.key] = self._quotas.get(check.key, 0) + change
        return self._budgets(plan)

    def _budgets(self, plan: Plan) -> dict[str, int]:
        return {c.key: self._quotas.get(c.key, 0) for c in plan.checks if c.kind == "budget"}

    async def aclose(self) -> None:
        return None

    def _used(self, check: Check) -> int:
        if check.kind in ("quota", "budget"):
            return self._quotas.get(check.key, 0)
        log = self._log(check.key)
        return len(log.entries) if check.kind == "conc" else log.total

    def _log(self, key: str) -> _Log:
        return self._logs.setdefault(key, _Log())

    def _refusal(self, check: Check, estimate: int, now_ms: int) -> int | None:
        """None when the check admits the request, else how long to wait (ms, -1: never)."""
        if check.kind in ("quota", "budget"):  # `estimate`: tokens, or cost units
            used = self._quotas.get(check.key, 0)
            return None if used + estimate <= check.limit else check.horizon_ms
        log = self._log(check.key)
        if check.kind == "conc":
            self._expire_leases(log, now_ms)
            return None if len(log.entries) + 1 <= check.limit else 1000
        log.expire(now_ms - WINDOW_MS)
        amount = 1 if check.kind == "rpm" else estimate
        if log.total + amount <= check.limit:
            return None
        if amount > check.limit:
            return -1
        return log.wait_to_free(log.total + amount - check.limit, now_ms, WINDOW_MS)

    def _take(self, check: Check, rid: str, estimate: int, now_ms: int) -> CheckState:
        if check.kind in ("quota", "budget"):
            used = self._quotas.get(check.key, 0) + estimate
            self._quotas[check.key] = used
            return CheckState(check.limit - used, check.horizon_ms)
        log = self._log(check.key)
        if check.kind == "conc":
            log.entries[rid] = (now_ms + check.horizon_ms, 1)
            log.total += 1
            return CheckState(check.limit - len(log.entries), 0)
        amount = 1 if check.kind == "rpm" else estimate
        log.entries[rid] = (now_ms, amount)
        log.total += amount
        return CheckState(check.limit - log.total, log.oldest_reset(now_ms, WINDOW_MS))

    @staticmethod
    def _expire_leases(log: _Log, now_ms: int) -> None:
        for rid, (until, _) in list(log.entries.items()):
            if until <= now_ms:
                del log.entries[rid]
                log.total -= 1
