"""Admitting requests against their limits and settling their token reservations."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from shared.errors import GatewayError, server_error
from shared.limits.config import Scope
from shared.limits.plan import COST_UNITS, Check, Plan, plan_for
from shared.limits.store import Admission, CheckState, LimitStore, StoreUnavailable

log = logging.getLogger("tollgate.limits")
OUTAGE_LOG_EVERY_SECONDS = 10.0
_PER_REQUEST = frozenset({"rpm", "conc"})


@dataclass
class Reservation:
    plan: Plan
    rid: str
    estimate: int
    store: LimitStore
    states: tuple[CheckState, ...]
    settled: bool = False
    cost: int = 0  # the worst case reserved against budgets, in cost units


class Limiter:
    def __init__(
        self,
        shared: LimitStore,
        local: LimitStore | None,
        fail_open: bool,
        quota_zone: ZoneInfo,
        lease_seconds: float,
        clock: Callable[[], float] = time.time,
    ):
        self._shared = shared
        self._local = local  # used while the shared store is down, when failing open
        self._fail_open = fail_open
        self._zone = quota_zone
        self._lease_ms = int(lease_seconds * 1000)
        self._clock = clock
        self._last_outage_log = 0.0
        self._pending: set[asyncio.Task[None]] = set()
        self.currency = "USD"  # for refusals of a budget: the price table's
        # Told each budget counter's value after a settlement or charge, and a budget's when
        # it refuses a request (as if spent whole: the budget is exhausted), for budget alerts.
        self.spent: Callable[[Plan, dict[str, int], bool], None] | None = None

    async def admit(
        self,
        system_id: str,
        scopes: list[Scope],
        estimate: int,
        cost: int = 0,
        *,
        requests_only: bool = False,
    ) -> Reservation | None:
        """Reserve `estimate` tokens and `cost` (cost units, the worst case in money) against
        `scopes` (the system's limits for one model); `requests_only`: a request that uses no
        tokens or money (an answer from the response cache) meets only the request and
        concurrency limits."""
        if not scopes:
            return None
        now = self._clock()
        plan = plan_for(system_id, scopes, datetime.fromtimestamp(now, self._zone), self._lease_ms)
        if requests_only:
            plan = Plan(plan.system_id, tuple(c for c in plan.checks if c.kind in _PER_REQUEST))
            if not plan.checks:
                return None
        rid = os.urandom(16).hex()
        store, admission = await self._admit(plan, rid, estimate, int(now * 1000), cost)
        if not admission.admitted:
            check = plan.checks[admission.failed_index]
            asked = cost if check.kind == "budget" else estimate
            if check.kind == "budget" and self.spent is not None:
                self.spent(plan, {check.key: admission.used}, True)
            raise rejection(
                check, system_id, admission.retry_after_ms, asked, admission.used, self.currency
            )
        return Reservation(plan, rid, estimate, store, admission.states, cost=cost)

    def settle_soon(
        self, reservation: Reservation | None, actual_tokens: int, actual_cost: int | None = None
    ) -> None:
        """Settle in a task of its own, so a cancelled request (client gone) still settles;
        `actual_cost` None leaves the cost reserved."""
        if reservation is None or reservation.settled:
            return
        reservation.settled = True
        self._spawn(self._settle(reservation, actual_tokens, actual_cost))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def end_lease_soon(self, reservation: Reservation) -> bool:
        """End the reservation's concurrency lease now and leave its tokens to be settled later
        (by `settle_held`); says whether it was reserved in the shared store."""
        reservation.settled = True
        self._spawn(self._settle(reservation, reservation.estimate, reservation.cost))
        return reservation.store is self._shared

    async def settle_held(
        self, plan: Plan, rid: str, delta: int, shared: bool, cost_delta: int = 0
    ) -> None:
        """Settle a reservation whose lease has ended, on whichever instance sees it end."""
        store = self._shared if shared or self._local is None else self._local
        try:
            self._tell(plan, await store.settle(plan, rid, delta, cost_delta))
        except StoreUnavailable as exc:
            log.error("could not settle reservation %s: %s", rid, exc)

    async def charge(self, system_id: str, scopes: list[Scope], tokens: int, cost: int = 0) -> None:
        """Charge tokens and cost used without a reservation (a batch's) to the daily and
        monthly quotas and budgets of `scopes`, in the period in which they are charged."""
        now = self._clock()
        plan = plan_for(system_id, scopes, datetime.fromtimestamp(now, self._zone), self._lease_ms)
        try:
            self._tell(plan, await self._shared.charge(plan, tokens, cost))
        except StoreUnavailable as exc:
            log.error("could not charge %d tokens to %s's quotas: %s", tokens, system_id, exc)

    async def drain(self) -> None:
        """Wait for settlements still running (at shutdown)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    async def aclose(self) -> None:
        await self.drain()
        await self._shared.aclose()

    async def _admit(
        self, plan: Plan, rid: str, estimate: int, now_ms: int, cost: int
    ) -> tuple[LimitStore, Admission]:
        try:
            return self._shared, await self._shared.admit(plan, rid, estimate, 0, cost)
        except StoreUnavailable as exc:
            self._log_outage(exc)
            if not self._fail_open or self._local is None:
                message = "Rate limits cannot be checked right now; try again shortly."
                headers = {"retry-after": "1"}
                raise server_error(503, message, "limits_unavailable", headers) from None
            return self._local, await self._local.admit(plan, rid, estimate, now_ms, cost)

    async def _settle(
        self, reservation: Reservation, actual_tokens: int, actual_cost: int | None
    ) -> None:
        delta = actual_tokens - reservation.estimate
        cost_delta = 0 if actual_cost is None else actual_cost - reservation.cost
        try:
            plan = reservation.plan
            self._tell(
                plan, await reservation.store.settle(plan, reservation.rid, delta, cost_delta)
            )
        except StoreUnavailable as exc:
            # The reservation stays as taken: limits err on the safe side.
            log.error("could not settle reservation %s: %s", reservation.rid, exc)

    def _tell(self, plan: Plan, spent: dict[str, int]) -> None:
        if spent and self.spent is not None:
            self.spent(plan, spent, False)

    def _log_outage(self, exc: StoreUnavailable) -> None:
        now = time.monotonic()
        if now - self._last_outage_log >= OUTAGE_LOG_EVERY_SECONDS:
            self._last_outage_log = now
            policy = "admitting and counting in this instance" if self._fail_open else "refusing"
            log.error("LIMITS STORE UNREACHABLE (%s): %s requests", exc, policy)


def rejection(
    check: Check,
    system_id: str,
    retry_after_ms: int,
    estimate: int,
    used: int = 0,
    currency: str = "USD",
) -> GatewayError:
    hopeless = retry_after_ms < 0
    wait_ms = 60_000 if hopeless else max(retry_after_ms, 1)
    headers = {
        "retry-after": str(math.ceil(wait_ms / 1000)),
        "retry-after-ms": str(wait_ms),
        **refusal_headers(check, used, wait_ms),
    }
    if hopeless or check.kind in ("quota", "budget"):
        headers["x-should-retry"] = "false"
    message = (
        _budget_message(check, system_id, wait_ms, estimate, used, currency)
        if check.kind == "budget"
        else _message(check, system_id, wait_ms, estimate, hopeless, used)
    )
    return GatewayError(
        429, message, type=_TYPES[check.kind], code=_CODES[check.kind], headers=headers
    )


def go_duration(ms: int) -> str:
    """OpenAI's reset format: `12ms`, `1s`, `13.694s`, `6m0s`."""
    if ms < 1000:
        return f"{max(ms, 0)}ms"
    if ms < 60_000:
        return f"{ms / 1000:.3f}".rstrip("0").rstrip(".") + "s"
    minutes, rest = divmod(ms, 60_000)
    seconds = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    return f"{minutes}m{seconds}s"


def refusal_headers(check: Check, used: int, wait_ms: int) -> dict[str, str]:
    """The refusing limit as `x-ratelimit-*` headers (a quota's as `...-tokens-day|month`)."""
    label = {"rpm": "requests", "tpm": "tokens"}.get(check.kind)
    if check.kind in ("quota", "budget"):
        label = f"{'tokens' if check.kind == 'quota' else 'budget'}-{check.label}"
    if label is None:  # concurrency has no such header
        return {}
    limit, left = check.limit, max(check.limit - used, 0)
    if check.kind == "budget":  # in the currency, not in cost units
        return {
            f"x-ratelimit-limit-{label}": f"{limit / COST_UNITS:.8f}",
            f"x-ratelimit-remaining-{label}": f"{left / COST_UNITS:.8f}",
            f"x-ratelimit-reset-{label}": go_duration(wait_ms),
        }
    return {
        f"x-ratelimit-limit-{label}": str(limit),
        f"x-ratelimit-remaining-{label}": str(left),
        f"x-ratelimit-reset-{label}": go_duration(wait_ms),
    }


_TYPES = {
    "rpm": "requests",
    "tpm": "tokens",
    "conc": "requests",
    "quota": "insufficient_quota",
    "budget": "insufficient_quota",
}
_CODES = {
    "rpm": "rate_limit_exceeded",
    "tpm": "rate_limit_exceeded",
    "conc": "concurrency_limit_exceeded",
    "quota": "quota_exceeded",
    "budget": "budget_exceeded",
}
_NAMES = {
    "rpm": "requests per minute (RPM)",
    "tpm": "tokens per minute (TPM)",
    "conc": "concurrent requests",
}


def _message(
    check: Check, system_id: str, wait_ms: int, estimate: int, hopeless: bool, used: int
) -> str:
    if check.kind == "quota":
        return (
            f"The token quota for this {check.label} of {_whose(check, system_id)} would be "
            "exceeded: "
            f"{used:,} of {check.limit:,} tokens used, and this request may need up to "
            f"{estimate:,} (its prompt and the most it may generate; set max_tokens lower to "
            f"need less). The quota renews in {_human(wait_ms)}."
        )
    if hopeless:
        return (
            f"Request too large for system '{system_id}' on tokens per minute (TPM): "
            f"Limit {check.limit}, Requested {estimate}."
        )
    requested = 1 if check.kind != "tpm" else estimate
    return (
        f"Rate limit reached for system '{system_id}' on {_NAMES[check.kind]}: "
        f"Limit {check.limit}, Used {used}, Requested {requested}. "
        f"Please try again in {wait_ms / 1000:.3g}s."
    )


def _budget_message(
    check: Check, system_id: str, wait_ms: int, asked: int, used: int, currency: str
) -> str:
    def money(units: int) -> str:
        return f"{units / COST_UNITS:,.4f} {currency}"

    return (
        f"The budget for this {check.label} of {_whose(check, system_id)} would be exceeded: "
        f"{money(used)} of {money(check.limit)} spent, and this request may cost up to "
        f"{money(asked)} (its prompt and the most it may generate). It renews in "
        f"{_human(wait_ms)}."
    )


def _whose(check: Check, system_id: str) -> str:
    """Whose quota a counter is: `tg:{system}:s:day:...`, `...:m:<model>:...`, `...:k:<key>:...`."""
    parts = check.key.split(":")
    scope, name = parts[2], ":".join(parts[3:-2])
    if scope == "m":
        return f"model '{name}' for system '{system_id}'"
    if scope == "k":
        return f"key '{name}' of system '{system_id}'"
    return f"system '{system_id}'"


def _human(ms: int) -> str:
    minutes = math.ceil(ms / 60_000)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d{hours}h{minutes:02d}m"
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"
