"""NCRONTAB, the six-field schedule Azure Functions timers use: `sec min hour day month dow`.

Supports `*`, numbers, ranges `a-b`, lists `a,b` and steps `*/n` / `a-b/n`; enough for the
local host to fire timer functions on the same schedule as Azure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

_BOUNDS = ((0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
_SEARCH_LIMIT = timedelta(days=366 * 5)


@dataclass(frozen=True)
class Schedule:
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday

    def matches(self, t: datetime) -> bool:
        return (
            t.second in self.seconds
            and t.minute in self.minutes
            and t.hour in self.hours
            and t.day in self.days
            and t.month in self.months
            and (t.weekday() + 1) % 7 in self.weekdays
        )

    def next_after(self, t: datetime) -> datetime:
        """The first matching second strictly after `t`."""
        candidate = t.replace(microsecond=0) + timedelta(seconds=1)
        limit = t + _SEARCH_LIMIT
        while candidate <= limit:
            if not (
                candidate.month in self.months
                and candidate.day in self.days
                and (candidate.weekday() + 1) % 7 in self.weekdays
            ):
                candidate = (candidate + timedelta(days=1)).replace(hour=0, minute=0, second=0)
            elif candidate.hour not in self.hours:
                candidate = (candidate + timedelta(hours=1)).replace(minute=0, second=0)
            elif candidate.minute not in self.minutes:
                candidate = (candidate + timedelta(minutes=1)).replace(second=0)
            elif candidate.second not in self.seconds:
                candidate += timedelta(seconds=1)
            else:
                return candidate
        raise ValueError("schedule never fires")


def parse(expression: str) -> Schedule:
    fields = expression.split()
    if len(fields) != 6:
        raise ValueError(f"NCRONTAB needs 6 fields (sec min hour day month dow): {expression!r}")
    sets = [_field(text, low, high) for text, (low, high) in zip(fields, _BOUNDS, strict=True)]
    return Schedule(*sets)


def _field(text: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if span == "*":
            start, end = low, high
        elif "-" in span:
            a, b = span.split("-", 1)
            start, end = int(a), int(b)
        else:
            start = end = int(span)
            if step_text:
                end = high
        if step < 1 or start < low or end > high or start > end:
            raise ValueError(f"NCRONTAB field {text!r} is out of range {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)
