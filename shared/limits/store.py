"""What a limit store answers; the in-process and Redis stores give the same answers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from shared.limits.plan import Plan


class StoreUnavailable(Exception):
    """The shared store (Redis) could not be reached; the outage policy decides."""


@dataclass(frozen=True)
class CheckState:
    remaining: int
    reset_ms: int  # until one more unit is available again (quota: until the period ends)


@dataclass(frozen=True)
class Admission:
    admitted: bool
    failed_index: int  # index into plan.checks of the limit that refused, or -1
    retry_after_ms: int  # -1: waiting cannot help (the request alone exceeds the limit)
    states: tuple[CheckState, ...]  # per check, after this admission; empty when refused
    used: int = 0  # refused: what the refusing check had used (requests, tokens, leases)


class LimitStore(Protocol):
    async def admit(
        self, plan: Plan, rid: str, estimate: int, now_ms: int, cost: int = 0
    ) -> Admission:
        """Reserve `estimate` tokens and `cost` (cost units) against every check, or none."""
        ...

    async def settle(self, plan: Plan, rid: str, delta: int, cost: int = 0) -> dict[str, int]:
        """Correct the reservation by `delta` tokens and `cost` cost units, and end its
        concurrency lease; the budget counters' values after it, by key."""
        ...

    async def charge(self, plan: Plan, amount: int, cost: int = 0) -> dict[str, int]:
        """Add `amount` tokens and `cost`, never reserved, to the plan's quotas and budgets;
        the budget counters' values after it, by key."""
        ...

    async def aclose(self) -> None: ...
