"""Usage reports: the gateway's usage records, read for a date range and summed per group.

Files (usage_files) are read a chunk at a time, a few at once; a group keeps its sums and its
requests' total_ms (for the percentiles), never the records. Costs are in the price table's
currency, which the records do not name: the report is told it (`--currency`).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import IO, Any

from shared.limits.plan import COST_UNITS, cost_units
from shared.probe.latency_csv import neutralise
from shared.report.render import aligned
from shared.report.stats import quantile
from shared.report.usage_files import RecordFiles
from shared.usage.record import UsageRecord

DIMENSIONS = ("system", "model", "day", "hour", "key", "deployment", "route", "status")
DEFAULT_BY = ("system", "model", "day")
CONCURRENCY = 8  # files read at once
TOTAL = "(total)"  # the totals row's first cell: no system id or model has parentheses
MEASURES = (
    "requests",
    "errors",
    "error_rate",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cost",
    "p50_total_ms",
    "p95_total_ms",
    "cache_hits",
    "saved_cost",
)
TEXT_MEASURES = (
    "requests",
    "errors",
    "err%",
    "prompt tok",
    "completion tok",
    "total tok",
    "cost",  # shown as `cost (USD)`, in the currency the report is given
    "p50 ms",
    "p95 ms",
)
CURRENCY_COLUMN = "currency"  # the CSV's last column
DEFAULT_CURRENCY = "USD"
NO_PRICES = (
    "no prices configured: costs are 0 (tokens were used, yet no record carries a cost; give "
    'each model a "price" in the gateway configuration)'
)

Key = tuple[str | int, ...]

_DIMENSION: dict[str, Callable[[UsageRecord, datetime], str | int]] = {
    "system": lambda record, _: record.system,
    "model": lambda record, _: record.model,
    "day": lambda _, at: at.date().isoformat(),
    "hour": lambda _, at: f"{at:%Y-%m-%d %H}:00",
    "key": lambda record, _: record.key_id,
    "deployment": lambda record, _: record.deployment,
    "route": lambda record, _: record.route,
    "status": lambda record, _: record.status,
}
_TEXT_FIELDS = ("time", "system", "key_id", "model", "deployment", "route")
_INT_FIELDS = ("status", "prompt_tokens", "completion_tokens", "total_tokens")
_NUMBER_FIELDS = ("cost", "total_ms", "saved_cost")


def parse_by(text: str) -> tuple[str, ...]:
    """`system,model,day` -> ("system", "model", "day"); ValueError for an unknown name."""
    names = tuple(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    unknown = [name for name in names if name not in DIMENSIONS]
    if unknown or not names:
        wrong = ", ".join(unknown) or "nothing"
        raise ValueError(f"cannot group by {wrong} (choose from {','.join(DIMENSIONS)})")
    return names


def parse_record(line: bytes) -> tuple[UsageRecord, datetime] | None:
    """The record on a line and its time in UTC; None when the line is not a usable record."""
    try:
        record = UsageRecord.from_json(line.decode("utf-8"))
        if not _well_typed(record):
            return None
        at = datetime.fromisoformat(record.time)
    except (ValueError, TypeError, AttributeError, RecursionError):
        return None
    return record, at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _well_typed(record: UsageRecord) -> bool:
    texts = [getattr(record, name) for name in _TEXT_FIELDS]
    ints = [getattr(record, name) for name in _INT_FIELDS]
    numbers = [getattr(record, name) for name in _NUMBER_FIELDS]
    return (
        all(isinstance(value, str) for value in texts)
        and all(_is_int(value) for value in ints)
        and all(
            _is_int(value) or (isinstance(value, float) and math.isfinite(value))
            for value in numbers
        )
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass
class Group:
    """The sums of one group's records, and their total_ms for the percentiles."""

    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    # Money in 1e-8 of the currency (the records' precision), so that sums are exact and the
    # same in any order.
    cost_units: int = 0
    total_ms: list[float] = field(default_factory=list)
    cache_hits: int = 0
    saved_units: int = 0  # what the hits' answers would have cost

    @property
    def cost(self) -> float:
        return self.cost_units / COST_UNITS

    @property
    def saved_cost(self) -> float:
        return self.saved_units / COST_UNITS

    def add(self, record: UsageRecord) -> None:
        self.requests += 1
        self.errors += record.status >= 400
        self.prompt_tokens += record.prompt_tokens
        self.completion_tokens += record.completion_tokens
        self.total_tokens += record.total_tokens
        self.cost_units += cost_units(record.cost)
        self.total_ms.append(float(record.total_ms))
        if record.cache == "hit":
            self.cache_hits += 1
            self.saved_units += cost_units(record.saved_cost)

    def merge(self, other: Group) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.total_tokens += other.total_tokens
        self.cost_units += other.cost_units
        self.total_ms += other.total_ms
        self.cache_hits += other.cache_hits
        self.saved_units += other.saved_units


@dataclass
class Tally:
    """Records grouped by the `by` dimensions, within since..until (None: no limit)."""

    by: tuple[str, ...]
    since: date | None
    until: date | None
    groups: dict[Key, Group] = field(default_factory=dict)
    files: int = 0
    records: int = 0
    first_day: date | None = None
    last_day: date | None = None
    malformed: int = 0
    unfinished: int = 0  # a last line without its newline: a file being written, or cut short
    first_malformed: str = ""  # its file:line

    def add_line(self, line: bytes, where: str, *, last: bool = False) -> None:
        if not line.strip():
            return
        parsed = parse_record(line)
        if parsed is None:
            if last:
                self.unfinished += 1
            else:
                self.malformed += 1
                self.first_malformed = self.first_malformed or where
            return
        record, at = parsed
        day = at.date()
        if (self.since and day < self.since) or (self.until and day > self.until):
            return
        self.records += 1
        self.first_day = min(day, self.first_day or day)
        self.last_day = max(day, self.last_day or day)
        key = tuple(_DIMENSION[name](record, at) for name in self.by)
        self.groups.setdefault(key, Group()).add(record)

    def period(self) -> str:
        return f"{self.since or self.first_day} to {self.until or self.last_day}"


async def read_usage(files: RecordFiles, tally: Tally, concurrency: int = CONCURRENCY) -> None:
    """Every record of the files into tally, at most `concurrency` files at once."""
    names = await files.names()
    tally.files += len(names)
    pending = iter(names)

    async def worker() -> None:
        for name in pending:  # shared by the workers: each file is taken once
            await read_file(files, name, tally)

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(concurrency, len(names))):
                group.create_task(worker())
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None


async def read_file(files: RecordFiles, name: str, tally: Tally) -> None:
    number = 0
    rest = b""
    async with contextlib.aclosing(files.chunks(name)) as chunks:
        async for chunk in chunks:
            *lines, rest = (rest + chunk).split(b"\n")
            for line in lines:
                number += 1
                tally.add_line(line, f"{name}:{number}")
    if rest.strip():
        tally.add_line(rest, f"{name}:{number + 1}", last=True)


@dataclass(frozen=True)
class BillRow:
    key: Key  # the --by values; (TOTAL, "", ...) for the totals row
    requests: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost: float
    p50_ms: float
    p95_ms: float
    cache_hits: int = 0
    saved_cost: float = 0.0

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @classmethod
    def of(cls, key: Key, group: Group) -> BillRow:
        return cls(
            key=key,
            requests=group.requests,
            errors=group.errors,
            prompt_tokens=group.prompt_tokens,
            completion_tokens=group.completion_tokens,
            total_tokens=group.total_tokens,
            cost=group.cost,
            p50_ms=quantile(group.total_ms, 0.5),
            p95_ms=quantile(group.total_ms, 0.95),
            cache_hits=group.cache_hits,
            saved_cost=group.saved_cost,
        )


def bill(tally: Tally) -> list[BillRow]:
    """One row per group, in key order, then the totals row (empty without records)."""
    if not tally.groups:
        return []
    rows = [BillRow.of(key, tally.groups[key]) for key in sorted(tally.groups)]
    everything = Group()
    for group in tally.groups.values():
        everything.merge(group)
    totals_key: Key = (TOTAL, *[""] * (len(tally.by) - 1))
    return [*rows, BillRow.of(totals_key, everything)]


def unpriced(totals: BillRow) -> bool:
    """Whether tokens were used and nothing cost anything: no model had a price."""
    return totals.cost == 0 and totals.total_tokens > 0


def render_table(
    tally: Tally, rows: Sequence[BillRow], where: str, currency: str = DEFAULT_CURRENCY
) -> str:
    files = "file" if tally.files == 1 else "files"
    records = "record" if tally.records == 1 else "records"
    headline = (
        f"Usage {tally.period()} (UTC) · {tally.files} {files}, {tally.records:,} {records} "
        f"from {where}"
    )
    *groups, totals = rows
    priced = not unpriced(totals)
    cached = totals.cache_hits > 0
    body = [
        [*(_shown(value) for value in row.key), *_measure_cells(row, priced, cached)]
        for row in groups
    ]
    body.append([*(str(value) for value in totals.key), *_measure_cells(totals, priced, cached)])
    headers = [
        f"cost ({currency})" if name == "cost" else name
        for name in TEXT_MEASURES
        if priced or name != "cost"
    ]
    if cached:  # only when the response cache answered anything
        headers += ["cache hits", *([f"saved ({currency})"] if priced else [])]
    table = aligned((*tally.by, *headers), body, len(tally.by))
    return f"{headline}\n\n{table}" + ("" if priced else f"\n\n{NO_PRICES}")


def _shown(value: str | int) -> str:
    return "(none)" if value == "" else str(value)


def _measure_cells(row: BillRow, priced: bool = True, cached: bool = False) -> list[str]:
    cost = [f"{row.cost:,.4f}"] if priced else []
    saved = [f"{row.saved_cost:,.4f}"] if priced else []
    hits = [f"{row.cache_hits:,}", *saved] if cached else []
    return [
        f"{row.requests:,}",
        f"{row.errors:,}",
        f"{row.error_rate * 100:.1f}%",
        f"{row.prompt_tokens:,}",
        f"{row.completion_tokens:,}",
        f"{row.total_tokens:,}",
        *cost,
        f"{row.p50_ms:.1f}",
        f"{row.p95_ms:.1f}",
        *hits,
    ]


def write_csv(
    out: IO[str], by: Sequence[str], rows: Sequence[BillRow], currency: str = DEFAULT_CURRENCY
) -> None:
    """The rows for a spreadsheet: plain numbers, the cost's currency last, and no cell it
    would take for a formula."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*by, *MEASURES, CURRENCY_COLUMN])
    for row in rows:
        writer.writerow(
            [
                *(_csv_cell(value) for value in row.key),
                row.requests,
                row.errors,
                f"{row.error_rate:.6f}",
                row.prompt_tokens,
                row.completion_tokens,
                row.total_tokens,
                f"{row.cost:.6f}",
                f"{row.p50_ms:.3f}",
                f"{row.p95_ms:.3f}",
                row.cache_hits,
                f"{row.saved_cost:.6f}",
                neutralise(currency),
            ]
        )


def _csv_cell(value: str | int) -> str:
    text = str(value)
    # "-" alone (an unidentified caller) is no formula; "'-" would only puzzle finance.
    return text if text == "-" else neutralise(text)
