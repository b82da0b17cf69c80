"""Latency statistics for `tollgate report latency`: percentiles per model, path and stream,
and overhead.

Percentiles interpolate linearly between closest ranks: in the n sorted values, the q-th
quantile sits at position h = (n - 1) * q (0-based); the result is x[floor(h)] plus the
fraction of h times the gap to the next value. This is `statistics.quantiles(...,
method="inclusive")` and numpy's default ("linear"); p0 is the minimum and p100 the maximum.

The gateway's overhead is a difference of percentiles (gateway p50 - direct p50, ...), not a
percentile of differences: direct and gateway requests are not paired one to one.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from shared.probe.latency_csv import LatencyRow

DIRECT = "direct"
GATEWAY = "gateway"
_PATH_ORDER = {DIRECT: 0, GATEWAY: 1}


def quantile(values: Sequence[float], q: float) -> float:
    """The q-th quantile (0 <= q <= 1) of values, by linear interpolation (see module doc)."""
    if not values:
        raise ValueError("quantile of no values")
    if not 0 <= q <= 1:
        raise ValueError(f"quantile {q} is not between 0 and 1")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (position - low) * (ordered[high] - ordered[low])


@dataclass(frozen=True)
class Spread:
    """p50, p90 and p99 of one measure (ms)."""

    p50: float
    p90: float
    p99: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread | None:
        if not values:
            return None
        return cls(quantile(values, 0.5), quantile(values, 0.9), quantile(values, 0.99))


@dataclass(frozen=True)
class GroupStats:
    """One model, stream mode and path; percentiles over its successful rows only."""

    model: str
    stream: bool
    path: str
    count: int
    errors: int
    total: Spread | None  # None when no row succeeded
    ttfb: Spread | None
    ttft: Spread | None = None  # first content token: streamed rows that timed it

    @property
    def good(self) -> int:
        return self.count - self.errors

    @property
    def error_rate(self) -> float:
        return self.errors / self.count if self.count else 0.0


@dataclass(frozen=True)
class Overhead:
    """Gateway minus direct, for one model and stream mode (ms; negative = gateway faster),
    and gateway over direct at p50 (the ratio `make bench` reports too); direct and gateway
    are the groups it was computed from, with their counts."""

    model: str
    stream: bool
    direct: GroupStats
    gateway: GroupStats
    total_p50: float
    total_p99: float
    ttfb_p50: float
    ttfb_p99: float
    total_p50_ratio: float
    ttfb_p50_ratio: float
    ttft_p50: float | None = None  # None unless both paths timed first content tokens
    ttft_p99: float | None = None


@dataclass(frozen=True)
class Summary:
    groups: tuple[GroupStats, ...]
    overheads: tuple[Overhead, ...]
    rows: int
    first: datetime | None  # earliest request start
    last: datetime | None


def path_rank(path: str) -> tuple[int, str]:
    return (_PATH_ORDER.get(path, len(_PATH_ORDER)), path)


def summarise(rows: Iterable[LatencyRow]) -> Summary:
    buckets: dict[tuple[str, bool, str], list[LatencyRow]] = defaultdict(list)
    starts: list[datetime] = []
    for row in rows:
        buckets[(row.model, row.stream, row.path)].append(row)
        starts.append(row.start)
    keys = sorted(buckets, key=lambda k: (k[0], k[1], path_rank(k[2])))
    groups = tuple(group_stats(buckets[key]) for key in keys)
    return Summary(
        groups=groups,
        overheads=overheads(groups),
        rows=len(starts),
        first=min(starts, default=None),
        last=max(starts, default=None),
    )


def group_stats(rows: Sequence[LatencyRow]) -> GroupStats:
    """Statistics of rows that share one model, stream mode and path."""
    good = [row for row in rows if row.ok]
    return GroupStats(
        model=rows[0].model,
        stream=rows[0].stream,
        path=rows[0].path,
        count=len(rows),
        errors=len(rows) - len(good),
        total=Spread.of([row.total_ms for row in good]),
        ttfb=Spread.of([row.ttfb_ms for row in good]),
        ttft=Spread.of([row.ttft_ms for row in good if row.ttft_ms is not None]),
    )


def overheads(groups: Iterable[GroupStats]) -> tuple[Overhead, ...]:
    """One entry per model and stream mode where both paths have successful rows."""
    by_key = {(g.model, g.stream, g.path): g for g in groups}
    found: list[Overhead] = []
    for (model, stream, path), gateway in by_key.items():
        direct = by_key.get((model, stream, DIRECT))
        if path == GATEWAY and direct is not None:
            overhead = overhead_of(direct, gateway)
            if overhead is not None:
                found.append(overhead)
    return tuple(sorted(found, key=lambda o: (o.model, o.stream)))


def overhead_of(direct: GroupStats, gateway: GroupStats) -> Overhead | None:
    """Gateway minus direct; None unless both have successful rows."""
    if not (gateway.total and direct.total and gateway.ttfb and direct.ttfb):
        return None
    routed, straight = gateway.ttft, direct.ttft
    return Overhead(
        model=gateway.model,
        stream=gateway.stream,
        direct=direct,
        gateway=gateway,
        total_p50=gateway.total.p50 - direct.total.p50,
        total_p99=gateway.total.p99 - direct.total.p99,
        ttfb_p50=gateway.ttfb.p50 - direct.ttfb.p50,
        ttfb_p99=gateway.ttfb.p99 - direct.ttfb.p99,
        total_p50_ratio=_ratio(gateway.total.p50, direct.total.p50),
        ttfb_p50_ratio=_ratio(gateway.ttfb.p50, direct.ttfb.p50),
        ttft_p50=routed.p50 - straight.p50 if routed and straight else None,
        ttft_p99=routed.p99 - straight.p99 if routed and straight else None,
    )


def _ratio(gateway: float, direct: float) -> float:
    return gateway / direct if direct > 0 else 0.0
