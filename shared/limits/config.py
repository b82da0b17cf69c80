"""Traffic limits as configured in the registry: per system, per system and model, per key."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from shared.errors import ConfigError

LIMIT_FIELDS = (
    "rpm",
    "tpm",
    "concurrency",
    "tokens_per_day",
    "tokens_per_month",
    "budget_per_day",
    "budget_per_month",
)
MONEY_FIELDS = frozenset({"budget_per_day", "budget_per_month"})  # in the price table's currency


class LimitsError(ConfigError):
    pass


@dataclass(frozen=True)
class Limits:
    rpm: int | None = None
    tpm: int | None = None
    concurrency: int | None = None
    tokens_per_day: int | None = None
    tokens_per_month: int | None = None
    budget_per_day: float | None = None  # money, in the price table's currency
    budget_per_month: float | None = None

    @property
    def empty(self) -> bool:
        return all(getattr(self, name) is None for name in LIMIT_FIELDS)

    def to_json(self) -> dict[str, float]:
        return {f.name: v for f in fields(self) if (v := getattr(self, f.name)) is not None}


NO_LIMITS = Limits()


def parse_limits(raw: Any, where: str) -> Limits:
    if raw is None:
        return NO_LIMITS
    if not isinstance(raw, dict):
        raise LimitsError(f"{where}: limits must be an object")
    unknown = set(raw) - set(LIMIT_FIELDS)
    if unknown:
        raise LimitsError(f"{where}: unknown limits {sorted(unknown)}")
    for name, value in raw.items():
        kinds = (int, float) if name in MONEY_FIELDS else (int,)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, kinds) or value < 0
        ):
            what = "a number" if name in MONEY_FIELDS else "a whole number"
            raise LimitsError(f"{where}: {name} must be {what} >= 0")
    return Limits(**raw)


@dataclass(frozen=True)
class Scope:
    """One set of counters: `name` is unique within its system (e.g. "s", "m:gpt-4o", "k:abc")."""

    name: str
    limits: Limits


def applicable_scopes(
    system_limits: Limits, model_limits: Limits, key_limits: Limits, model: str, key_id: str
) -> list[Scope]:
    scopes = [
        Scope("s", system_limits),
        Scope(f"m:{model}", model_limits),
        Scope(f"k:{key_id}", key_limits),
    ]
    return [s for s in scopes if not s.limits.empty]
