"""Turning a caller's limits into counters to check: what the limit stores operate on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from shared.limits.config import Scope

WINDOW_MS = 60_000
COST_UNITS = 10**8  # money is counted in 1e-8 of the currency: a usage record's precision


def cost_units(amount: float) -> int:
    return round(amount * COST_UNITS)


@dataclass(frozen=True)
class Check:
    kind: str  # "rpm", "tpm", "conc", "quota" (tokens), "budget" (money, in cost units)
    key: str  # the counter's key; every key of one system shares a Redis hash slot
    limit: int
    horizon_ms: int  # quota: ms until its period ends; conc: the lease; else the window
    label: str  # for messages and headers: "requests", "tokens", "concurrency", "day", "month"


@dataclass(frozen=True)
class Plan:
    system_id: str
    checks: tuple[Check, ...]


def plan_for(system_id: str, scopes: list[Scope], now: datetime, lease_ms: int) -> Plan:
    """`now` is timezone-aware, in the zone whose calendar the quotas follow."""
    base = f"tg:{{{system_id}}}"
    day_end, month_end = _period_ends(now)
    checks: list[Check] = []
    for scope in scopes:
        limits, prefix = scope.limits, f"{base}:{scope.name}"
        if limits.concurrency is not None:
            checks.append(
                Check("conc", f"{prefix}:conc", limits.concurrency, lease_ms, "concurrency")
            )
        if limits.rpm is not None:
            checks.append(Check("rpm", f"{prefix}:rpm", limits.rpm, WINDOW_MS, "requests"))
        if limits.tpm is not None:
            checks.append(Check("tpm", f"{prefix}:tpm", limits.tpm, WINDOW_MS, "tokens"))
        if limits.tokens_per_day is not None:
            key = f"{prefix}:day:{now:%Y%m%d}"
            checks.append(Check("quota", key, limits.tokens_per_day, _ms(day_end - now), "day"))
        if limits.tokens_per_month is not None:
            key = f"{prefix}:month:{now:%Y%m}"
            checks.append(
                Check("quota", key, limits.tokens_per_month, _ms(month_end - now), "month")
            )
        if limits.budget_per_day is not None:
            key, limit = f"{prefix}:bday:{now:%Y%m%d}", cost_units(limits.budget_per_day)
            checks.append(Check("budget", key, limit, _ms(day_end - now), "day"))
        if limits.budget_per_month is not None:
            key, limit = f"{prefix}:bmonth:{now:%Y%m}", cost_units(limits.budget_per_month)
            checks.append(Check("budget", key, limit, _ms(month_end - now), "month"))
    return Plan(system_id, tuple(checks))


def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _period_ends(now: datetime) -> tuple[datetime, datetime]:
    return _ends_of_day(now.replace(hour=0, minute=0, second=0, microsecond=0))


@lru_cache(maxsize=8)
def _ends_of_day(day_start: datetime) -> tuple[datetime, datetime]:
    day_end = (day_start + timedelta(days=1, hours=3)).replace(hour=0)  # DST-proof
    month_start = day_start.replace(day=1)
    month_end = (month_start + timedelta(days=32)).replace(day=1)
    return day_end, month_end


def _ms(delta: timedelta) -> int:
    return max(1, int(delta.total_seconds() * 1000))
