"""`tollgate report latency` as text: its headline, the aligned tables and the warnings; the
cells are shared with the HTML page (page)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shared.report.caveats import MAX_ERROR_RATE, MIN_GOOD, caveats
from shared.report.stats import GroupStats, Overhead, Spread, Summary

GROUP_HEADERS = (
    "model",
    "stream",
    "path",
    "n",
    "err%",
    "total p50",
    "total p90",
    "total p99",
    "ttfb p50",
    "ttfb p90",
    "ttfb p99",
    "ttft p50",
    "ttft p90",
    "ttft p99",
)
OVERHEAD_HEADERS = (
    "model",
    "stream",
    "direct ok/n",
    "gateway ok/n",
    "total p50",
    "total p99",
    "ttfb p50",
    "ttfb p99",
    "ttft p50",
    "ttft p99",
    "total p50 x",
    "ttfb p50 x",
)
_TEXT_COLUMNS = 3  # leading columns that align left; the rest are numbers
GROUP_TITLE = (
    "Latency in ms (percentiles over successful requests; n counts every request; ttfb = first "
    "byte, ttft = first content token, streamed only)"
)
OVERHEAD_TITLE = (
    "Gateway overhead: gateway - direct in ms (negative = gateway faster), and gateway / direct "
    "at p50 (x); ok/n = the successful rows each side rests on, of all its rows"
)
NO_OVERHEAD = "(no model has successful rows on both the direct and the gateway path)"
WARNINGS_TITLE = (
    f"Warnings: fewer than {MIN_GOOD} successful rows on a side, or more than "
    f"{MAX_ERROR_RATE:.0%} failed; do not trust these comparisons"
)


@dataclass(frozen=True)
class Provenance:
    """What the report was made from, for its headline."""

    period: str
    files: int
    rows: int
    failed: int = 0

    def headline(self) -> str:
        files = "file" if self.files == 1 else "files"
        rows = "row" if self.rows == 1 else "rows"
        failed = f" ({self.failed:,} failed)" if self.failed else ""
        return f"{self.period} · {self.files} {files}, {self.rows} {rows}{failed}"


def ms(value: float) -> str:
    return f"{value:.1f}"


def signed_ms(value: float) -> str:
    """An overhead, to 0.01 ms: the gateway's own cost is often under a millisecond."""
    return f"{value:+.2f}"


def _stream(stream: bool) -> str:
    return "yes" if stream else "no"


def _spread_cells(spread: Spread | None) -> list[str]:
    return ["-"] * 3 if spread is None else [ms(spread.p50), ms(spread.p90), ms(spread.p99)]


def _optional(value: float | None) -> str:
    return "-" if value is None else signed_ms(value)


def _ok_of(group: GroupStats) -> str:
    return f"{group.good}/{group.count}"


def group_cells(group: GroupStats) -> list[str]:
    return [
        group.model,
        _stream(group.stream),
        group.path,
        str(group.count),
        f"{group.error_rate * 100:.1f}%",
        *_spread_cells(group.total),
        *_spread_cells(group.ttfb),
        *_spread_cells(group.ttft),
    ]


def overhead_cells(overhead: Overhead) -> list[str]:
    return [
        overhead.model,
        _stream(overhead.stream),
        _ok_of(overhead.direct),
        _ok_of(overhead.gateway),
        *(signed_ms(v) for v in (overhead.total_p50, overhead.total_p99)),
        *(signed_ms(v) for v in (overhead.ttfb_p50, overhead.ttfb_p99)),
        *(_optional(v) for v in (overhead.ttft_p50, overhead.ttft_p99)),
        *(f"{v:.2f}x" for v in (overhead.total_p50_ratio, overhead.ttfb_p50_ratio)),
    ]


def aligned(headers: Sequence[str], rows: Sequence[Sequence[str]], text_columns: int) -> str:
    """Columns two spaces apart; the first text_columns align left, the others right."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=False)]
    lines = []
    for cells in (headers, *rows):
        padded = [
            cell.ljust(width) if i < text_columns else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


def render_text(summary: Summary, provenance: Provenance) -> str:
    groups = aligned(GROUP_HEADERS, [group_cells(g) for g in summary.groups], _TEXT_COLUMNS)
    if summary.overheads:
        overhead = aligned(OVERHEAD_HEADERS, [overhead_cells(o) for o in summary.overheads], 2)
    else:
        overhead = NO_OVERHEAD
    parts = [provenance.headline(), f"{GROUP_TITLE}\n{groups}", f"{OVERHEAD_TITLE}\n{overhead}"]
    warnings = [f"  {caveat.text()}" for caveat in caveats(summary)]
    if warnings:
        parts.append("\n".join([WARNINGS_TITLE, *warnings]))
    return "\n\n".join(parts)
