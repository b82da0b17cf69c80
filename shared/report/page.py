"""`tollgate report latency --out`: report.html, one self-contained page written here: the
warnings, the chart as inline SVG (svg_chart) and the tables, with units and the rows every
figure rests on. No script, no image, nothing fetched from elsewhere; every cell is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from shared.report.caveats import caveats
from shared.report.render import (
    GROUP_HEADERS,
    GROUP_TITLE,
    NO_OVERHEAD,
    OVERHEAD_HEADERS,
    OVERHEAD_TITLE,
    WARNINGS_TITLE,
    Provenance,
    group_cells,
    overhead_cells,
)
from shared.report.stats import Summary
from shared.report.svg_chart import render_svg

_TEXT_COLUMNS = 3
_STYLE = """
body { font: 16px/1.45 system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 28px 0 8px; }
.headline { font-size: 16px; color: #444; margin: 0 0 16px; }
.warnings { border: 2px solid #b00020; background: #fff4f5; padding: 8px 16px; }
.warnings h2 { color: #b00020; margin-top: 8px; font-size: 17px; }
.warnings li { font-size: 15px; }
.chart { overflow-x: auto; }
table { border-collapse: collapse; font-size: 14px; margin-bottom: 16px; }
th, td { padding: 4px 10px; border-bottom: 1px solid #ddd; }
th { background: #f4f4f4; text-align: left; }
td { white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
p.note { font-size: 14px; color: #444; max-width: 70em; }
"""
_NOTE = (
    "Percentiles interpolate linearly between closest ranks over the successful requests "
    "only; n counts every request. ttfb is the time to the first byte of the answer, ttft "
    "(streamed answers) to its first content token. The overhead is a difference of "
    "percentiles (gateway p50 - direct p50), not a percentile of differences."
)


def render_html(summary: Summary, provenance: Provenance) -> str:
    return "\n".join(
        [
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>Tollgate latency report</title>\n<style>{_STYLE}</style>\n</head>",
            "<body>\n<h1>Tollgate latency report</h1>",
            f'<p class="headline">{html.escape(provenance.headline())}</p>',
            _warnings(summary),
            f'<div class="chart">\n{render_svg(summary)}\n</div>',
            f"<h2>{html.escape(GROUP_TITLE)}</h2>",
            _table(GROUP_HEADERS, [group_cells(g) for g in summary.groups], _TEXT_COLUMNS),
            f"<h2>{html.escape(OVERHEAD_TITLE)}</h2>",
            _overhead_table(summary),
            f'<p class="note">{html.escape(_NOTE)}</p>',
            "</body>\n</html>\n",
        ]
    )


def _warnings(summary: Summary) -> str:
    found = caveats(summary)
    if not found:
        return ""
    items = "\n".join(f"<li>{html.escape(caveat.text())}</li>" for caveat in found)
    title = html.escape(WARNINGS_TITLE)
    return f'<section class="warnings">\n<h2>{title}</h2>\n<ul>\n{items}\n</ul>\n</section>'


def _overhead_table(summary: Summary) -> str:
    if not summary.overheads:
        return f"<p>{html.escape(NO_OVERHEAD)}</p>"
    return _table(OVERHEAD_HEADERS, [overhead_cells(o) for o in summary.overheads], 2)


def _with_unit(header: str) -> str:
    """`total p50` -> `total p50 (ms)`; counts, rates and ratios keep their own."""
    return f"{header} (ms)" if header.endswith(("p50", "p90", "p99")) else header


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], text_columns: int) -> str:
    head = "".join(f"<th>{html.escape(_with_unit(h))}</th>" for h in headers)
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
