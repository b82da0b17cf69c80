"""`tollgate report latency` output: an aligned text table, a PNG chart and a self-contained
HTML page."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shared.report.stats import GroupStats, Overhead, Spread, Summary, path_rank

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
)
OVERHEAD_HEADERS = (
    "model",
    "stream",
    "total p50",
    "total p99",
    "ttfb p50",
    "ttfb p99",
    "total p50 x",
    "ttfb p50 x",
)
_TEXT_COLUMNS = 3  # leading columns that align left; the rest are numbers
GROUP_TITLE = "Latency in ms (percentiles over successful requests)"
OVERHEAD_TITLE = (
    "Gateway overhead: gateway - direct in ms (negative = gateway faster), and gateway / direct "
    "at p50 (x)"
)
NO_OVERHEAD = "(no model has successful rows on both the direct and the gateway path)"


@dataclass(frozen=True)
class Provenance:
    """What the report was made from, for its headline."""

    period: str
    files: int
    rows: int

    def headline(self) -> str:
        files = "file" if self.files == 1 else "files"
        rows = "row" if self.rows == 1 else "rows"
        return f"{self.period} · {self.files} {files}, {self.rows} {rows}"


def ms(value: float) -> str:
    return f"{value:.1f}"


def signed_ms(value: float) -> str:
    return f"{value:+.1f}"


def _stream(stream: bool) -> str:
    return "yes" if stream else "no"


def _spread_cells(spread: Spread | None) -> list[str]:
    return ["-"] * 3 if spread is None else [ms(spread.p50), ms(spread.p90), ms(spread.p99)]


def group_cells(group: GroupStats) -> list[str]:
    return [
        group.model,
        _stream(group.stream),
        group.path,
        str(group.count),
        f"{group.error_rate * 100:.1f}%",
        *_spread_cells(group.total),
        *_spread_cells(group.ttfb),
    ]


def overhead_cells(overhead: Overhead) -> list[str]:
    return [
        overhead.model,
        _stream(overhead.stream),
        *(signed_ms(v) for v in (overhead.total_p50, overhead.total_p99)),
        *(signed_ms(v) for v in (overhead.ttfb_p50, overhead.ttfb_p99)),
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
    return "\n\n".join(
        [provenance.headline(), f"{GROUP_TITLE}\n{groups}", f"{OVERHEAD_TITLE}\n{overhead}"]
    )


def render_html(summary: Summary, provenance: Provenance, png: bytes) -> str:
    image = base64.b64encode(png).decode("ascii")
    group_rows = [group_cells(g) for g in summary.groups]
    if summary.overheads:
        overhead_rows = [overhead_cells(o) for o in summary.overheads]
        overhead = _html_table(OVERHEAD_HEADERS, overhead_rows, 2)
    else:
        overhead = f"<p>{html.escape(NO_OVERHEAD)}</p>"
    headline = html.escape(provenance.headline())
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Tollgate latency report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 2em; }}
th, td {{ padding: 0.25em 0.75em; border-bottom: 1px solid #ddd; }}
th {{ background: #f4f4f4; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
img {{ max-width: 100%; }}
</style>
</head>
<body>
<h1>Tollgate latency report</h1>
<p>{headline}</p>
<img alt="latency chart" src="data:image/png;base64,{image}">
<h2>{html.escape(GROUP_TITLE)}</h2>
{_html_table(GROUP_HEADERS, group_rows, _TEXT_COLUMNS)}
<h2>{html.escape(OVERHEAD_TITLE)}</h2>
{overhead}
</body>
</html>
"""


def _html_table(headers: Sequence[str], rows: Sequence[Sequence[str]], text_columns: int) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for cells in rows:
        tds = "".join(
            f"<td>{html.escape(c)}</td>"
            if i < text_columns
            else f'<td class="num">{html.escape(c)}</td>'
            for i, c in enumerate(cells)
        )
        body.append(f"<tr>{tds}</tr>")
    return f"<table>\n<tr>{head}</tr>\n" + "\n".join(body) + "\n</table>"


# The chart: one row per model and stream mode; three panels sharing those rows.
_PATH_SHADES = {  # p50, p50-p90, p90-p99: dark to light
    "direct": ("#1f4e79", "#5b9bd5", "#bdd7ee"),
    "gateway": ("#a0410d", "#ed8a4c", "#f8cbad"),
}
_OTHER_SHADES = ("#404040", "#8c8c8c", "#d0d0d0")
_OVERHEAD_BARS = (  # label, attribute, colour
    ("total p50", "total_p50", "#5b2c83"),
    ("total p99", "total_p99", "#b39ddb"),
    ("ttfb p50", "ttfb_p50", "#2e7d32"),
    ("ttfb p99", "ttfb_p99", "#a5d6a7"),
)
_BAND = 0.8  # how much of a row's height its bars fill


def render_png(summary: Summary, provenance: Provenance) -> bytes:
    # Imported here: matplotlib is heavy and the Functions app never draws charts.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    categories = sorted({(g.model, g.stream) for g in summary.groups})
    figure = Figure(figsize=(17, 2.2 + 1.0 * len(categories)), layout="constrained")
    FigureCanvasAgg(figure)
    total_ax, ttfb_ax, overhead_ax = figure.subplots(1, 3, sharey=True)
    _spread_panel(total_ax, summary, categories, "total", "Total time")
    _spread_panel(ttfb_ax, summary, categories, "ttfb", "Time to first byte")
    _overhead_panel(overhead_ax, summary, categories)
    total_ax.set_yticks(range(len(categories)), [_category_label(c) for c in categories])
    total_ax.invert_yaxis()
    figure.suptitle(f"Tollgate latency — {provenance.headline()}", fontsize=14)
    _legend(figure, summary)
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=100)
    return out.getvalue()


def _category_label(category: tuple[str, bool]) -> str:
    model, stream = category
    return f"{model}\n{'streamed' if stream else 'not streamed'}"


def _paths(summary: Summary) -> list[str]:
    return sorted({g.path for g in summary.groups}, key=path_rank)


def _offsets(count: int) -> tuple[list[float], float]:
    height = _BAND / count
    return [-_BAND / 2 + height * (i + 0.5) for i in range(count)], height


def _spread_panel(
    ax: Any, summary: Summary, categories: list[tuple[str, bool]], measure: str, title: str
) -> None:
    paths = _paths(summary)
    offsets, height = _offsets(len(paths))
    by_key = {(g.model, g.stream, g.path): g for g in summary.groups}
    for row, (model, stream) in enumerate(categories):
        for path, offset in zip(paths, offsets, strict=True):
            group = by_key.get((model, stream, path))
            if group is None:
                continue
            spread: Spread | None = getattr(group, measure)
            y = row + offset
            if spread is None:
                ax.text(0, y, f" {path}: all {group.count} failed", va="center", fontsize=8)
                continue
            shades = _PATH_SHADES.get(path, _OTHER_SHADES)
            ax.barh(y, spread.p50, height, color=shades[0])
            ax.barh(y, spread.p90 - spread.p50, height, left=spread.p50, color=shades[1])
            ax.barh(y, spread.p99 - spread.p90, height, left=spread.p90, color=shades[2])
            label = f" p50 {spread.p50:,.0f} · p99 {spread.p99:,.0f}"
            ax.text(spread.p99, y, label, va="center", fontsize=8)
    ax.set_title(f"{title} (ms)")
    ax.set_xlabel("milliseconds")
    ax.margins(x=0.4)
    ax.set_xlim(left=0)
    ax.grid(axis="x", alpha=0.3)


def _overhead_panel(ax: Any, summary: Summary, categories: list[tuple[str, bool]]) -> None:
    offsets, height = _offsets(len(_OVERHEAD_BARS))
    by_key = {(o.model, o.stream): o for o in summary.overheads}
    for row, category in enumerate(categories):
        overhead = by_key.get(category)
        if overhead is None:
            ax.text(0, row, " no direct + gateway pair", va="center", fontsize=8, color="#666")
            continue
        for (_, attribute, colour), offset in zip(_OVERHEAD_BARS, offsets, strict=True):
            value: float = getattr(overhead, attribute)
            ax.barh(row + offset, value, height, color=colour)
            ha = "left" if value >= 0 else "right"
            ax.text(value, row + offset, f" {value:+,.0f} ", va="center", ha=ha, fontsize=7)
    ax.axvline(0, color="#333", linewidth=0.8)
    ax.set_title("Gateway overhead: gateway - direct (ms)")
    ax.set_xlabel("milliseconds (negative = gateway faster)")
    ax.margins(x=0.3)
    ax.grid(axis="x", alpha=0.3)


def _legend(figure: Any, summary: Summary) -> None:
    handles = [_patch(_PATH_SHADES.get(p, _OTHER_SHADES)[1], p) for p in _paths(summary)]
    handles += [
        _patch(_OTHER_SHADES[0], "0 → p50"),
        _patch(_OTHER_SHADES[1], "p50 → p90"),
        _patch(_OTHER_SHADES[2], "p90 → p99"),
    ]
    handles += [_patch(colour, f"overhead {label}") for label, _, colour in _OVERHEAD_BARS]
    figure.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=9)


def _patch(colour: str, label: str) -> Any:
    from matplotlib.patches import Patch

    return Patch(color=colour, label=label)
