"""The latency CSV: the seed's four columns first, in the seed's formats, then Tollgate's.

Shared by the scheduled probe, `tollgate bench` and `tollgate report`. Columns are only ever
added at the end (`ttft_ms` came last), and a reader takes files without the newer ones.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
COLUMNS = (
    "model",
    "start_time",
    "end_time",
    "duration",
    "path",
    "deployment",
    "region",
    "stream",
    "status",
    "ttfb_ms",
    "total_ms",
    "prompt_tokens",
    "completion_tokens",
    "error",
    "ttft_ms",  # time to the first content token of a streamed answer; empty otherwise
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_TIMEDELTA = re.compile(
    r"^(?:(?P<days>-?\d+) days?, )?(?P<h>\d+):(?P<m>\d{2}):(?P<s>\d{2})(?:\.(?P<us>\d{1,6}))?$"
)


@dataclass(frozen=True)
class LatencyRow:
    model: str
    start: datetime
    end: datetime
    path: str  # "direct" or "gateway"
    deployment: str
    region: str
    stream: bool
    status: int  # HTTP status, 0 when no response arrived
    ttfb_ms: float
    total_ms: float
    prompt_tokens: int | None
    completion_tokens: int | None
    error: str
    ttft_ms: float | None = None  # streamed answers: until the first non-empty delta.content

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300 and not self.error

    def cells(self) -> list[str]:
        values = [
            self.model,
            self.start.strftime(TIME_FORMAT),
            self.end.strftime(TIME_FORMAT),
            str(self.end - self.start),
            self.path,
            self.deployment,
            self.region,
            "true" if self.stream else "false",
            str(self.status),
            f"{self.ttfb_ms:.3f}",
            f"{self.total_ms:.3f}",
            "" if self.prompt_tokens is None else str(self.prompt_tokens),
            "" if self.completion_tokens is None else str(self.completion_tokens),
            self.error,
            "" if self.ttft_ms is None else f"{self.ttft_ms:.3f}",
        ]
        return [neutralise(v) for v in values]


def neutralise(cell: str) -> str:
    """Stop spreadsheet formula injection: a cell Excel would evaluate becomes text."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def _unneutralise(cell: str) -> str:
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(_FORMULA_START) else cell


def parse_timedelta(text: str) -> timedelta:
    match = _TIMEDELTA.match(text.strip())
    if match is None:
        raise ValueError(f"not a timedelta: {text!r}")
    micro = (match["us"] or "0").ljust(6, "0")
    return timedelta(
        days=int(match["days"] or 0),
        hours=int(match["h"]),
        minutes=int(match["m"]),
        seconds=int(match["s"]),
        microseconds=int(micro),
    )


def to_csv(rows: Iterable[LatencyRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(row.cells())
    return out.getvalue()


def read_csv(text: str) -> Iterator[LatencyRow]:
    """Rows of a probe or bench CSV; a seed CSV (four columns) reads with defaults."""
    for record in csv.DictReader(io.StringIO(text)):
        cell = {k: _unneutralise(v or "") for k, v in record.items() if k is not None}
        start = datetime.strptime(cell["start_time"], TIME_FORMAT)
        end = datetime.strptime(cell["end_time"], TIME_FORMAT)
        seed_total = parse_timedelta(cell["duration"]).total_seconds() * 1000
        total = float(cell.get("total_ms") or seed_total)
        yield LatencyRow(
            model=cell["model"],
            start=start,
            end=end,
            path=cell.get("path") or "unknown",
            deployment=cell.get("deployment", ""),
            region=cell.get("region", ""),
            stream=cell.get("stream") == "true",
            status=int(cell.get("status") or 200),
            ttfb_ms=float(cell.get("ttfb_ms") or total),
            total_ms=total,
            prompt_tokens=_int_or_none(cell.get("prompt_tokens")),
            completion_tokens=_int_or_none(cell.get("completion_tokens")),
            error=cell.get("error", ""),
            ttft_ms=_float_or_none(cell.get("ttft_ms")),
        )


def _int_or_none(text: str | None) -> int | None:
    return int(text) if text else None


def _float_or_none(text: str | None) -> float | None:
    return float(text) if text else None
