"""Budget alerts: when a system's spend crosses a configured fraction of one of its budgets
(50%, 80% and 100% by default), once per period across instances, a structured log event, a
metric, and, when the operator configured one, a small JSON POSTed to their webhook (bounded
retries). An alert names the system, the budget and the amounts, never a prompt or a key.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from opentelemetry import metrics

from shared.limits.plan import COST_UNITS, Plan

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("tollgate.budget")
ATTEMPTS = 3  # webhook deliveries tried, a second apart and then two
Post = Callable[[str, dict[str, Any]], Awaitable[int]]  # (url, payload) -> HTTP status


class Marks(Protocol):
    async def first(self, mark: str, seconds: int) -> bool:
        """True only for the first caller to set `mark` (kept `seconds`)."""
        ...


class MemoryMarks:
    def __init__(self) -> None:
        self._set: set[str] = set()

    async def first(self, mark: str, seconds: int) -> bool:
        if mark in self._set:
            return False
        self._set.add(mark)
        return True


class RedisMarks:
    def __init__(self, client: Redis) -> None:
        self._client = client

    async def first(self, mark: str, seconds: int) -> bool:
        return bool(await self._client.set(mark, "1", nx=True, ex=max(seconds, 1)))


class BudgetAlerts:
    def __init__(
        self,
        thresholds: tuple[float, ...],
        marks: Marks,
        post: Post | None,
        webhook: str | None,
        currency: str,
    ) -> None:
        self._thresholds = tuple(sorted(thresholds))
        self._marks, self._post, self._webhook = marks, post, webhook
        self.currency = currency
        self._fired: set[str] = set()  # marks this instance knows are taken
        self._tasks: set[asyncio.Task[None]] = set()
        self._counter = metrics.get_meter("tollgate").create_counter(
            "tollgate.budget.alerts", unit="{alert}", description="Budget thresholds crossed."
        )

    def spent_soon(self, plan: Plan, used: dict[str, int], refused: bool = False) -> None:
        """After a settlement: the budget counters' values (cost units), by counter key; or,
        `refused`, the budget that refused a request: it is exhausted, every threshold
        crossed, whatever is left under it."""
        for check in plan.checks:
            if check.kind != "budget" or check.key not in used or check.limit <= 0:
                continue
            reached = check.limit if refused else used[check.key]
            for threshold in self._thresholds:
                mark = f"tg:alert:{check.key}:{threshold:g}"
                if reached >= threshold * check.limit and mark not in self._fired:
                    self._fired.add(mark)
                    spent = used[check.key]
                    fire = self._fire(mark, plan.system_id, check, threshold, spent, refused)
                    self._spawn(fire)

    async def _fire(
        self, mark: str, system_id: str, check: Any, threshold: float, spent: int, refused: bool
    ) -> None:
        try:
            if not await self._marks.first(mark, check.horizon_ms // 1000 + 86_400):
                return  # another instance told it
        except Exception as exc:  # Redis down: better twice than never
            log.warning("budget alert marks unavailable (%s)", type(exc).__name__)
        alert = _alert(system_id, check, threshold, spent, self.currency)
        alert["refused"] = refused  # a request was refused: what is left covers none
        log.warning("budget alert", extra=alert)
        self._counter.add(
            1, {"system": system_id, "period": check.label, "threshold": f"{threshold:g}"}
        )
        if self._post is not None and self._webhook:
            await self._deliver(alert)

    async def _deliver(self, alert: dict[str, Any]) -> None:
        assert self._post is not None and self._webhook
        for attempt in range(ATTEMPTS):
            try:
                status = await self._post(self._webhook, alert)
                if 200 <= status < 300:
                    return
                reason = f"status {status}"
            except Exception as exc:  # the webhook down: retried, then given up, logged
                reason = type(exc).__name__
            if attempt + 1 < ATTEMPTS:
                await asyncio.sleep(2**attempt)
        log.error("budget alert webhook failed after %d attempts: %s", ATTEMPTS, reason)

    def _spawn(self, work: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _alert(
    system_id: str, check: Any, threshold: float, spent: int, currency: str
) -> dict[str, Any]:
    parts = check.key.split(":")
    scope, name = parts[2], ":".join(parts[3:-2])
    whose = {"s": "system", "m": f"model {name}", "k": f"key {name}"}[scope]
    return {
        "event": "tollgate.budget_alert",
        "system": system_id,
        "scope": whose,
        "period": check.label,
        "threshold": threshold,
        "spent": round(spent / COST_UNITS, 8),
        "budget": round(check.limit / COST_UNITS, 8),
        "currency": currency,
        "time": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }


async def post_json(url: str, payload: dict[str, Any]) -> int:
    """One POST to the operator's webhook (TLS verified, 5 s at most)."""
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=5)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(url, json=payload) as resp,
    ):
        return resp.status
