"""`tollgate report latency --out`: report.png, drawn with matplotlib.

One row per model and stream mode, shared by four panels: total time, first byte, first
content token (percentile bars per path, with the rows each rests on) and the gateway's
overhead (with its comparison's counts and, when it is doubtful, why).
"""

from __future__ import annotations

import io
import math
from itertools import pairwise
from typing import Any

from shared.report import chart_style as style
from shared.report.caveats import MAX_ERROR_RATE, MIN_GOOD, Caveat, by_comparison, caveats
from shared.report.render import Provenance
from shared.report.stats import Spread, Summary, path_rank

_BAND = 0.8  # how much of a row's height its bars fill
_FONT = 9  # points, the smallest text: 12.5 px at 100 dpi
Category = tuple[str, bool]


def render_png(summary: Summary, provenance: Provenance) -> bytes:
    out = io.BytesIO()
    figure(summary, provenance).savefig(out, format="png", dpi=100)
    return out.getvalue()


def figure(summary: Summary, provenance: Provenance) -> Any:
    # Imported here: matplotlib is heavy and the Functions app never draws charts.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    categories = sorted({(g.model, g.stream) for g in summary.groups})
    found = caveats(summary)
    fig = Figure(figsize=(18, 3.0 + 2.2 * len(categories)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 2, sharey=True).flatten()
    for ax, (measure, title) in zip(axes, style.MEASURES, strict=False):
        _spread_panel(ax, summary, categories, measure, title)
    _overhead_panel(axes[3], summary, categories, by_comparison(found))
    axes[0].set_yticks(range(len(categories)), [_category_label(c) for c in categories])
    axes[0].set_ylim(len(categories) - 0.5, -0.6)  # top down, room for the first row's note
    fig.suptitle(_title(provenance, found), fontsize=14)
    _legend(fig, summary)
    return fig


def _title(provenance: Provenance, found: tuple[Caveat, ...]) -> str:
    title = f"Tollgate latency — {provenance.headline()}"
    if found:
        title += (
            f"\nWarning: {len(found)} comparison(s) rest on fewer than {MIN_GOOD} good rows "
            f"a side or more than {MAX_ERROR_RATE:.0%} failures (marked in red)"
        )
    return title


def _category_label(category: Category) -> str:
    model, stream = category
    return f"{model}\n{'streamed' if stream else 'not streamed'}"


def _paths(summary: Summary) -> list[str]:
    return sorted({g.path for g in summary.groups}, key=path_rank)


def _offsets(count: int) -> tuple[list[float], float]:
    height = _BAND / count
    return [-_BAND / 2 + height * (i + 0.5) for i in range(count)], height


def _spread_panel(
    ax: Any, summary: Summary, categories: list[Category], measure: str, title: str
) -> None:
    paths = _paths(summary)
    offsets, height = _offsets(len(paths))
    by_key = {(g.model, g.stream, g.path): g for g in summary.groups}
    for row, (model, stream) in enumerate(categories):
        if measure == "ttft" and not stream:
            ax.text(0, row, " not streamed: no token timing", va="center", fontsize=_FONT)
            continue
        for path, offset in zip(paths, offsets, strict=True):
            group = by_key.get((model, stream, path))
            if group is None:
                continue
            spread: Spread | None = getattr(group, measure)
            y = row + offset
            if spread is None:
                why = f"all {group.count} failed" if not group.good else "not timed (older CSV)"
                ax.text(0, y, f" {path}: {why}", va="center", fontsize=_FONT, color="#666")
                continue
            _spread_bars(ax, y, height, spread, path)
            label = (
                f" p50 {style.latency(spread.p50)} · p99 {style.latency(spread.p99)} ms"
                f" · {style.sample(group)}"
            )
            ax.text(spread.p99, y, label, va="center", fontsize=_FONT)
    ax.set_title(f"{title}, ms", fontsize=12)
    ax.set_xlabel("milliseconds")
    ax.use_sticky_edges = False  # else a zero-width band at p99 pins the axis's end there
    ax.margins(x=0.6)
    ax.set_xlim(left=0)
    ax.grid(axis="x", alpha=0.3)


def _spread_bars(ax: Any, y: float, height: float, spread: Spread, path: str) -> None:
    """0 -> p50, p50 -> p90, p90 -> p99; each bar's gid is its legend label."""
    edges = (0.0, spread.p50, spread.p90, spread.p99)
    for (left, right), colour, band in zip(
        pairwise(edges), style.shades(path), style.BANDS, strict=True
    ):
        ax.barh(y, right - left, height, left=left, color=colour, gid=f"{path} {band}")


def _overhead_panel(
    ax: Any, summary: Summary, categories: list[Category], doubts: dict[Category, Caveat]
) -> None:
    offsets, height = _offsets(len(style.OVERHEAD_BARS))
    by_key = {(o.model, o.stream): o for o in summary.overheads}
    for row, category in enumerate(categories):
        overhead = by_key.get(category)
        caveat = doubts.get(category)
        note = style.comparison_sample(overhead) if overhead else "no direct + gateway pair"
        _row_note(ax, row, note, caveat)
        if overhead is None:
            continue
        bars = style.overhead_bars(overhead)  # ttft only when streamed: fewer than offsets
        for (label, value, colour), offset in zip(bars, offsets[: len(bars)], strict=True):
            ax.barh(row + offset, value, height, color=colour, gid=f"overhead {label}")
            ha = "left" if value >= 0 else "right"
            text = f" {label} {style.overhead(value)} "
            ax.text(value, row + offset, text, va="center", ha=ha, fontsize=_FONT)
    ax.axvline(0, color="#333", linewidth=0.8)
    ax.set_title("Gateway overhead: gateway - direct, ms", fontsize=12)
    ax.set_xlabel("milliseconds (negative = gateway faster)")
    ax.use_sticky_edges = False
    ax.margins(x=0.45)
    ax.grid(axis="x", alpha=0.3)


def _row_note(ax: Any, row: int, note: str, caveat: Caveat | None) -> None:
    """The comparison's counts along the top of its row, and in red why it is doubtful."""
    where = ("axes fraction", "data")
    top = row - 0.5  # in the gap above the row's bars
    ax.annotate(note, (0.005, top), xycoords=where, va="center", fontsize=_FONT, color="#444")
    if caveat is not None:
        ax.annotate(
            caveat.short(),
            (0.995, top),
            va="center",
            xycoords=where,
            ha="right",
            fontsize=_FONT,
            color=style.WARNING_COLOUR,
            fontweight="bold",
        )


def _legend(fig: Any, summary: Summary) -> None:
    """Swatches in the bars' own colours; matplotlib fills a legend column by column, so a
    row holds one path's bands (and the overheads' p50s or p99s)."""
    paths = _paths(summary)
    handles = [
        _patch(style.shades(path)[band], f"{path} {style.BANDS[band]}")
        for band in range(len(style.BANDS))
        for path in paths
    ]
    handles += [_patch(colour, f"overhead {label}") for label, _, colour in style.OVERHEAD_BARS]
    columns = math.ceil(len(handles) / len(paths))
    fig.legend(handles=handles, loc="outside lower center", ncols=columns, fontsize=_FONT + 1)


def _patch(colour: str, label: str) -> Any:
    from matplotlib.patches import Patch

    return Patch(color=colour, label=label)
