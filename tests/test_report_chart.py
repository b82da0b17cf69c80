"""`tollgate report latency`: the warnings on thin or failing comparisons, sub-millisecond
overheads, first content tokens, and the PNG chart's labels, counts and legend."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from matplotlib.text import Text

from shared.cli.main import main
from shared.probe.latency_csv import COLUMNS, LatencyRow, to_csv
from shared.report.caveats import MAX_ERROR_RATE, MIN_GOOD, caveats
from shared.report.png_chart import figure, render_png
from shared.report.render import Provenance
from shared.report.stats import summarise
from tests.test_report import START, make_row, sample_rows, table_row

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def fast_and_thin() -> list[LatencyRow]:
    """gpt-4o: 30 good rows a path, the gateway 0.25 ms slower, streamed with first content
    tokens; gpt-35-turbo: 7 good direct rows against 2 good gateway rows and 7 refused (the
    "gateway 200 ms faster" of issue #18)."""
    rows = []
    for i in range(30):
        at = START + timedelta(seconds=i)
        for path, extra in (("direct", 0.0), ("gateway", 0.25)):
            total, ttfb = 1.5 + i * 0.02 + extra, 1.25 + i * 0.02 + extra
            rows.append(make_row("gpt-4o", path, False, total, ttfb, start=at))
            total, ttfb, ttft = 40.0 + i + extra, 0.8 + extra, 20.0 + i * 0.5 + extra
            rows.append(make_row("gpt-4o", path, True, total, ttfb, start=at, ttft=ttft))
    rows += [make_row("gpt-35-turbo", "direct", False, 300.0 + i * 9, 290.0) for i in range(7)]
    rows += [make_row("gpt-35-turbo", "gateway", False, 100.0 + i, 95.0) for i in range(2)]
    refused = make_row("gpt-35-turbo", "gateway", False, 5.0, 5.0, status=401, error="HTTP 401")
    return rows + [refused] * 7


def report(rows: list[LatencyRow], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    source = tmp_path / "runs.csv"
    source.write_text(to_csv(rows), encoding="utf-8")
    assert main(["report", "latency", str(source)]) == 0
    return capsys.readouterr().out


def test_a_thin_failing_comparison_says_what_it_rests_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = report(fast_and_thin(), tmp_path, capsys)
    overhead = out.split("Gateway overhead", 1)[1]
    assert table_row(overhead, "gpt-35-turbo", "no")[2:4] == ["7/7", "2/9"]
    assert table_row(overhead, "gpt-4o", "no")[2:4] == ["30/30", "30/30"]
    warnings = out.split("Warnings:", 1)[1].splitlines()[1:]
    assert warnings == [
        "  gpt-35-turbo not streamed: thin data: 7 good direct rows against 2 good gateway rows "
        "(fewer than 20 on a side); failing: 7 of 9 gateway requests failed (77.8%, more than 5%)"
    ]
    assert "· 1 file, 136 rows (7 failed)" in out


def test_only_the_comparison_with_too_many_failures_is_flagged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = report(sample_rows(), tmp_path, capsys)  # 23 good rows a side; one side 2 of 25 failed
    (warning,) = out.split("Warnings:", 1)[1].splitlines()[1:]
    assert warning == (
        "  gpt-4o not streamed: failing: 2 of 25 gateway requests failed (8.0%, more than 5%)"
    )


@pytest.mark.parametrize(
    ("good", "failed", "flagged"),
    [(MIN_GOOD, 0, False), (MIN_GOOD - 1, 0, True), (MIN_GOOD, 1, False), (MIN_GOOD, 2, True)],
)
def test_thresholds(good: int, failed: int, flagged: bool) -> None:
    """Fewer than MIN_GOOD good rows on a side is thin; more than 5% failed is failing."""
    assert 1 / (MIN_GOOD + 1) <= MAX_ERROR_RATE < 2 / (MIN_GOOD + 2)
    rows = [make_row("m", "direct", False, 10.0, 5.0) for _ in range(MIN_GOOD)]
    rows += [make_row("m", "gateway", False, 11.0, 5.0) for _ in range(good)]
    rows += [make_row("m", "gateway", False, 1.0, 1.0, status=503)] * failed
    assert bool(caveats(summarise(rows))) == flagged


def test_sub_millisecond_overhead_and_first_tokens(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = report(fast_and_thin(), tmp_path, capsys)
    overhead = out.split("Gateway overhead", 1)[1]
    cells = table_row(overhead, "gpt-4o", "yes")
    assert cells[4:10] == ["+0.25"] * 6  # total, ttfb and ttft at p50 and p99, to 0.01 ms
    streamed = table_row(out, "gpt-4o", "yes", "gateway")
    assert streamed[11] == "27.5"  # ttft p50: 20 + 14.5 * 0.5 + 0.25


def test_a_csv_without_the_ttft_column_still_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert COLUMNS[-1] == "ttft_ms"  # added last: the older columns keep their places
    lines = to_csv(sample_rows()).splitlines()
    older = "\n".join(line.rsplit(",", 1)[0] for line in lines) + "\n"
    assert "ttft" not in older
    source = tmp_path / "older.csv"
    source.write_text(older, encoding="utf-8")
    assert main(["report", str(source)]) == 0
    out = capsys.readouterr().out
    assert table_row(out, "gpt-4o", "yes", "direct")[11:] == ["-", "-", "-"]
    assert table_row(out.split("Gateway overhead", 1)[1], "gpt-4o", "yes")[8:10] == ["-", "-"]


def chart_texts(summary_rows: list[LatencyRow]) -> tuple[Figure, list[Text]]:
    fig = figure(summarise(summary_rows), Provenance("2026-11-24 to 2026-11-24", 1, 136, 7))
    return fig, [t for t in fig.findobj(Text) if t.get_text().strip()]


def test_chart_labels_counts_and_warnings() -> None:
    _, texts = chart_texts(fast_and_thin())
    words = [t.get_text() for t in texts]
    assert " total p50 +0.25 ms " in words and " ttft p99 +0.25 ms " in words
    assert any(w.endswith("ms · n=30") for w in words)  # n on every series
    assert " p50 100.5 · p99 101.0 ms · n=2 ok of 9" in words
    assert " p50 1.79 · p99 2.07 ms · n=30" in words  # under 10 ms: to 0.01 ms
    assert "direct n=7, gateway n=2 ok of 9" in words
    assert "warning: thin data (7 vs 2 good rows); gateway 7 of 9 failed" in words
    assert any("Warning: 1 comparison(s) rest on fewer than 20 good rows" in w for w in words)
    assert min(float(t.get_fontsize()) for t in texts) >= 9  # 12.5 px at the PNG's 100 dpi


def test_legend_swatches_are_the_bars_colours() -> None:
    fig, _ = chart_texts(fast_and_thin())
    (legend,) = fig.legends
    handles = [h for h in legend.legend_handles if isinstance(h, Patch)]
    labels = [text.get_text() for text in legend.get_texts()]
    swatches = {
        label: to_hex(handle.get_facecolor()) for label, handle in zip(labels, handles, strict=True)
    }
    bars = [p for ax in fig.axes for p in ax.patches if isinstance(p, Rectangle) and p.get_gid()]
    assert len(bars) > 40
    for bar in bars:
        gid = str(bar.get_gid())
        assert to_hex(bar.get_facecolor()) == swatches[gid], gid
    assert {bar.get_gid() for bar in bars} == set(swatches)  # no swatch without its bars


def test_png_is_written() -> None:
    png = render_png(summarise(fast_and_thin()), Provenance("a day", 1, 136, 7))
    assert png.startswith(PNG_MAGIC) and len(png) > 10_000
