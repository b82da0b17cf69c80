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
    async def admit(self, plan: Plan, rid: str, estimate: int, now_ms: int) -> Admission: ...

    async def settle(self, plan: Plan, rid: str, delta: int) -> None:
        """Correct the reservation by `delta` tokens and end its concurrency lease."""
        ...

    async def charge(self, plan: Plan, amount: int) -> None:
        """Add `amount` tokens, never reserved, to the plan's quota counters."""
        ...

    async def aclose(self) -> None: ...
