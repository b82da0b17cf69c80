"""What the PNG chart and the page's SVG chart share: the colours (a legend swatch is its bar's
colour exactly) and how numbers, samples and categories are written on them.

Overheads are written to 0.01 ms: the gateway's own cost is well under a millisecond, so
whole milliseconds would show every overhead as +0 or +1.
"""

from __future__ import annotations

from shared.report.stats import GroupStats, Overhead

PATH_SHADES = {  # 0 -> p50, p50 -> p90, p90 -> p99: dark to light
    "direct": ("#1f4e79", "#5b9bd5", "#bdd7ee"),
    "gateway": ("#a0410d", "#ed8a4c", "#f8cbad"),
}
OTHER_SHADES = ("#404040", "#8c8c8c", "#d0d0d0")
BANDS = ("0 → p50", "p50 → p90", "p90 → p99")
MEASURES = (  # GroupStats attribute, title
    ("total", "Total time"),
    ("ttfb", "Time to first byte"),
    ("ttft", "Time to first content token (streamed)"),
)
OVERHEAD_BARS = (  # label, Overhead attribute, colour
    ("total p50", "total_p50", "#5b2c83"),
    ("total p99", "total_p99", "#b39ddb"),
    ("ttfb p50", "ttfb_p50", "#2e7d32"),
    ("ttfb p99", "ttfb_p99", "#a5d6a7"),
    ("ttft p50", "ttft_p50", "#6d4c41"),
    ("ttft p99", "ttft_p99", "#bcaaa4"),
)
WARNING_COLOUR = "#b00020"
MUTED_COLOUR = "#555555"


def shades(path: str) -> tuple[str, str, str]:
    return PATH_SHADES.get(path, OTHER_SHADES)


def latency(value: float) -> str:
    """A latency in ms: 0.01 ms below 10 ms, else 0.1 ms."""
    return f"{value:,.2f}" if abs(value) < 10 else f"{value:,.1f}"


def overhead(value: float) -> str:
    return f"{value:+,.2f} ms"


def sample(group: GroupStats) -> str:
    """The rows a group's percentiles rest on: `n=23`, or `n=21 ok of 23`."""
    return f"n={group.count}" if not group.errors else f"n={group.good} ok of {group.count}"


def comparison_sample(o: Overhead) -> str:
    return f"direct {sample(o.direct)}, gateway {sample(o.gateway)}"


def category(model: str, stream: bool) -> str:
    return f"{model} · {'streamed' if stream else 'not streamed'}"


def overhead_bars(o: Overhead) -> list[tuple[str, float, str]]:
    """(label, ms, colour) of each overhead the comparison has (ttft: streamed only)."""
    found = [(label, getattr(o, attribute), colour) for label, attribute, colour in OVERHEAD_BARS]
    return [(label, value, colour) for label, value, colour in found if value is not None]
