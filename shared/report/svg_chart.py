"""The page's chart as inline SVG: plain shapes and real text, at its natural size (one SVG
unit is one CSS pixel), so it is sharp and legible at any zoom and needs no script, font or
file from elsewhere.

Top to bottom: total time, first byte and first content token (per model and stream mode, a
bar per path, 0 -> p50 -> p90 -> p99, with its figures and n), then the gateway's overhead per
comparison (a bar per measure from zero, with its figure, the counts it rests on and, in red,
why it is doubtful).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from html import escape
from itertools import pairwise

from shared.report import chart_style as style
from shared.report.caveats import Caveat, by_comparison, caveats
from shared.report.stats import GroupStats, Overhead, Summary, path_rank

WIDTH = 1180
FONT_PX = 13  # every text; headings are larger
LABEL_X = 8
INDENT_X = 28  # a path's or measure's label, under its model's
PLOT_X = 120
PLOT_W = 560
FIGURES_X = PLOT_X + PLOT_W + 16
ROW = 24
BAR = 16
MAX_TICKS = 6


class Canvas:
    """SVG elements stacked downwards from y = 0; `y` is where the next one goes."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.y = 0.0

    def text(self, x: float, y: float, content: str, **style_: str) -> None:
        attrs = "".join(f' {name.replace("_", "-")}="{value}"' for name, value in style_.items())
        self.parts.append(f'<text x="{x:.1f}" y="{y:.1f}"{attrs}>{escape(content)}</text>')

    def rect(self, x: float, y: float, width: float, height: float, colour: str) -> None:
        self.parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(width, 0.0):.1f}" '
            f'height="{height:.1f}" fill="{colour}"/>'
        )

    def line(self, x: float, top: float, bottom: float, colour: str) -> None:
        self.parts.append(
            f'<line x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{bottom:.1f}" stroke="{colour}"/>'
        )

    def svg(self, title: str) -> str:
        height = math.ceil(self.y + ROW)
        head = (
            f'<svg role="img" width="{WIDTH}" '
            f'height="{height}" viewBox="0 0 {WIDTH} {height}" font-size="{FONT_PX}" '
            f'font-family="system-ui, sans-serif" fill="#222">'
        )
        return "\n".join([head, f"<title>{escape(title)}</title>", *self.parts, "</svg>"])


class Scale:
    """Milliseconds to x, over round ticks that cover lo..hi (and 0)."""

    def __init__(self, lo: float, hi: float) -> None:
        self.ticks, self.decimals = nice_ticks(min(lo, 0.0), max(hi, 0.0))
        self.lo, self.hi = self.ticks[0], self.ticks[-1]

    def x(self, value: float) -> float:
        return PLOT_X + (value - self.lo) / (self.hi - self.lo) * PLOT_W

    def draw_under(self, canvas: Canvas, mark: int, top: float) -> None:
        """Grid lines and tick labels from top to canvas.y, under what was drawn after mark."""
        grid = Canvas()
        for tick in self.ticks:
            x = self.x(tick)
            grid.line(x, top, canvas.y + 4, "#333" if tick == 0 else "#ddd")
            label = f"{tick:,.{self.decimals}f}"
            grid.text(x, top - 4, label, text_anchor="middle", fill=style.MUTED_COLOUR)
        canvas.parts[mark:mark] = grid.parts


def nice_ticks(lo: float, hi: float) -> tuple[list[float], int]:
    """Ticks 1, 2, 2.5 or 5 times a power of ten apart, covering lo..hi; and their decimals."""
    raw = (hi - lo if hi > lo else 1.0) / (MAX_TICKS - 1)
    exponent = math.floor(math.log10(raw))
    multiple = next(m for m in (1, 2, 2.5, 5, 10) if m * 10.0**exponent >= raw * (1 - 1e-9))
    if multiple == 10:
        multiple, exponent = 1, exponent + 1
    step = multiple * 10.0**exponent
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    ticks = [n * step for n in range(first, max(last, first + 1) + 1)]
    return ticks, max(0, -exponent) + (1 if multiple == 2.5 else 0)


def render_svg(summary: Summary) -> str:
    canvas = Canvas()
    for measure, title in style.MEASURES:
        groups = [g for g in summary.groups if measure != "ttft" or g.stream]
        if groups:
            _spread_section(canvas, groups, measure, title)
    _overhead_section(canvas, summary.overheads, caveats(summary))
    return canvas.svg("Latency per model, stream mode and path, and the gateway's overhead")


def _heading(canvas: Canvas, text: str) -> None:
    canvas.y += 34
    canvas.text(LABEL_X, canvas.y, text, font_size="16", font_weight="bold")


def _spread_section(canvas: Canvas, groups: Sequence[GroupStats], measure: str, title: str) -> None:
    _heading(canvas, f"{title}, ms: bars 0 → p50 → p90 → p99 of successful requests")
    _legend(canvas, sorted({g.path for g in groups}, key=path_rank))
    spreads = [s for s in (getattr(g, measure) for g in groups) if s is not None]
    scale = Scale(0.0, max((s.p99 for s in spreads), default=1.0))
    canvas.y += 30
    top, mark = canvas.y, len(canvas.parts)
    for model, stream in dict.fromkeys((g.model, g.stream) for g in groups):
        _row_label(canvas, style.category(model, stream), LABEL_X, bold=True)
        for group in (g for g in groups if (g.model, g.stream) == (model, stream)):
            _spread_row(canvas, group, measure, scale)
    scale.draw_under(canvas, mark, top)


def _legend(canvas: Canvas, paths: Iterable[str]) -> None:
    canvas.y += 26
    x = float(LABEL_X)
    for path in paths:
        for colour, band in zip(style.shades(path), style.BANDS, strict=True):
            canvas.rect(x, canvas.y - 12, 14, 14, colour)
            label = f"{path} {band}"
            canvas.text(x + 19, canvas.y, label)
            x += 19 + 7.5 * len(label) + 18


def _row_label(canvas: Canvas, text: str, x: float, *, bold: bool = False, **attrs: str) -> None:
    canvas.y += ROW
    if bold:
        attrs["font_weight"] = "bold"
    canvas.text(x, canvas.y - 7, text, **attrs)


def _spread_row(canvas: Canvas, group: GroupStats, measure: str, scale: Scale) -> None:
    _row_label(canvas, group.path, INDENT_X)
    spread = getattr(group, measure)
    baseline = canvas.y - 7
    if spread is None:
        why = f"all {group.count} failed" if group.good == 0 else "not timed (an older CSV)"
        canvas.text(PLOT_X + 6, baseline, why, fill=style.MUTED_COLOUR)
        return
    bar_top = canvas.y - (ROW + BAR) / 2
    edges = (0.0, spread.p50, spread.p90, spread.p99)
    for (left, right), colour in zip(pairwise(edges), style.shades(group.path), strict=True):
        canvas.rect(scale.x(left), bar_top, scale.x(right) - scale.x(left), BAR, colour)
    figures = (
        f"p50 {style.latency(spread.p50)} · p90 {style.latency(spread.p90)} · "
        f"p99 {style.latency(spread.p99)} ms · {style.sample(group)}"
    )
    canvas.text(FIGURES_X, baseline, figures)


def _overhead_section(
    canvas: Canvas, overheads: Sequence[Overhead], found: tuple[Caveat, ...]
) -> None:
    _heading(canvas, "Gateway overhead: gateway - direct, ms (negative = gateway faster)")
    values = [value for o in overheads for _, value, _ in style.overhead_bars(o)]
    scale = Scale(min(values, default=0.0), max(values, default=0.0))
    doubts = by_comparison(found)
    canvas.y += 30
    top, mark = canvas.y, len(canvas.parts)
    for overhead in overheads:
        _comparison(canvas, overhead, doubts.pop((overhead.model, overhead.stream), None), scale)
    for caveat in doubts.values():  # comparisons with no overhead to draw: say why in red
        _row_label(canvas, style.category(caveat.model, caveat.stream), LABEL_X, bold=True)
        _reasons(canvas, caveat)
    if overheads:
        scale.draw_under(canvas, mark, top)
    else:
        _row_label(canvas, "no model has successful rows on both paths", LABEL_X)


def _comparison(canvas: Canvas, o: Overhead, caveat: Caveat | None, scale: Scale) -> None:
    _row_label(canvas, style.category(o.model, o.stream), LABEL_X, bold=True)
    canvas.text(FIGURES_X, canvas.y - 7, style.comparison_sample(o), fill=style.MUTED_COLOUR)
    if caveat is not None:
        _reasons(canvas, caveat)
    ratios = {"total p50": o.total_p50_ratio, "ttfb p50": o.ttfb_p50_ratio}
    for label, value, colour in style.overhead_bars(o):
        _row_label(canvas, label, INDENT_X)
        left, right = sorted((scale.x(0.0), scale.x(value)))
        canvas.rect(left, canvas.y - (ROW + BAR) / 2, right - left, BAR, colour)
        ratio = f" ({ratios[label]:.2f}x direct)" if label in ratios else ""
        canvas.text(FIGURES_X, canvas.y - 7, style.overhead(value) + ratio)
    canvas.y += ROW / 2


def _reasons(canvas: Canvas, caveat: Caveat) -> None:
    for reason in caveat.reasons:
        _row_label(canvas, f"warning: {reason}", INDENT_X, fill=style.WARNING_COLOUR)
