"""`tollgate report`: percentiles, overhead, the text table, the chart and the HTML page."""

from __future__ import annotations

import math
import re
import statistics
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from shared.cli.main import main
from shared.cli.report import load_store
from shared.probe.latency_csv import LatencyRow, to_csv
from shared.report.stats import quantile, summarise
from shared.storage.documents import FolderResults

START = datetime(2026, 11, 24, 9, 0, 0)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_row(
    model: str,
    path: str,
    stream: bool,
    total: float,
    ttfb: float,
    *,
    status: int = 200,
    error: str = "",
    start: datetime = START,
    ttft: float | None = None,
) -> LatencyRow:
    return LatencyRow(
        model=model,
        start=start,
        end=start + timedelta(milliseconds=total),
        path=path,
        deployment=f"{model}-dep",
        region="swedencentral",
        stream=stream,
        status=status,
        ttfb_ms=ttfb,
        total_ms=total,
        prompt_tokens=12,
        completion_tokens=34,
        error=error,
        ttft_ms=ttft,
    )


def first_tokens(ttfbs: list[float]) -> list[float]:
    """A streamed row's first content token: 40 ms after its first byte (a role-only chunk)."""
    return [ttfb + 40.0 for ttfb in ttfbs]


def timings(model: str, path: str, stream: bool) -> list[tuple[float, float]]:
    """Deterministic, unevenly spaced (total, ttfb) pairs; the gateway adds a fixed cost."""
    base = {"gpt-4o": 800.0, "gpt-35-turbo": 300.0}[model] + (15.0 if path == "gateway" else 0.0)
    pairs = []
    for i in range(23):
        total = base + (i * 37) % 23 * 11.5 + i * i * 0.75
        ttfb = 120.0 + i * 3.25 if stream else total * 0.97
        pairs.append((total, ttfb))
    return pairs


def sample_rows(day: datetime = START) -> list[LatencyRow]:
    rows = []
    for model in ("gpt-4o", "gpt-35-turbo"):
        for path in ("direct", "gateway"):
            for stream in (False, True):
                for i, (total, ttfb) in enumerate(timings(model, path, stream)):
                    at = day + timedelta(seconds=i)
                    ttft = first_tokens([ttfb])[0] if stream else None
                    rows.append(make_row(model, path, stream, total, ttfb, start=at, ttft=ttft))
    # Failures: counted in n and err%, never in the percentiles.
    rows.append(make_row("gpt-4o", "gateway", False, 99999.0, 99999.0, status=429, start=day))
    rows.append(make_row("gpt-4o", "gateway", False, 5.0, 5.0, status=0, error="timeout"))
    return rows


def expected(values: list[float], q: float) -> float:
    """An independent p-th percentile: closest-rank linear interpolation, written out."""
    ordered = sorted(values)
    h = (len(ordered) - 1) * q
    lo = math.floor(h)
    hi = math.ceil(h)
    return ordered[lo] * (1 - (h - lo)) + ordered[hi] * (h - lo)


def stdlib(values: list[float], percent: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


@pytest.fixture
def sample_csv(tmp_path: Path) -> Path:
    path = tmp_path / "bench.csv"
    path.write_text(to_csv(sample_rows()), encoding="utf-8")
    return path


def table_row(output: str, *leading: str) -> list[str]:
    """The cells of the first table line that starts with the given cells."""
    for line in output.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if tuple(cells[: len(leading)]) == leading:
            return cells
    raise AssertionError(f"no row {leading} in:\n{output}")


def assert_printed(cells: list[str], values: list[float]) -> None:
    """Printed to 0.1 ms: the CSV keeps 3 decimals, so allow the last printed digit to differ."""
    assert [float(cell) for cell in cells] == pytest.approx(values, abs=0.051)


def test_quantile_matches_independent_computations() -> None:
    values = [total for total, _ in timings("gpt-4o", "direct", False)]
    for percent in (1, 10, 25, 50, 90, 99):
        q = percent / 100
        assert quantile(values, q) == pytest.approx(expected(values, q))
        assert quantile(values, q) == pytest.approx(stdlib(values, percent))
    assert quantile(values, 0) == min(values)
    assert quantile(values, 1) == max(values)
    assert quantile([7.0], 0.99) == 7.0
    assert quantile([10.0, 20.0], 0.9) == pytest.approx(19.0)
    with pytest.raises(ValueError):
        quantile([], 0.5)


def test_summary_groups_percentiles_errors_and_overhead() -> None:
    summary = summarise(sample_rows())
    keys = [(g.model, g.stream, g.path) for g in summary.groups]
    assert keys == [
        (model, stream, path)
        for model in ("gpt-35-turbo", "gpt-4o")
        for stream in (False, True)
        for path in ("direct", "gateway")
    ]
    assert summary.rows == 8 * 23 + 2

    gateway = summary.groups[5]
    assert (gateway.model, gateway.stream, gateway.path) == ("gpt-4o", False, "gateway")
    assert (gateway.count, gateway.errors) == (25, 2)
    assert gateway.error_rate == pytest.approx(2 / 25)
    totals = [t for t, _ in timings("gpt-4o", "gateway", False)]
    assert gateway.total is not None
    assert gateway.total.p50 == pytest.approx(expected(totals, 0.5))
    assert gateway.total.p90 == pytest.approx(expected(totals, 0.9))
    assert gateway.total.p99 == pytest.approx(expected(totals, 0.99))

    overhead = next(o for o in summary.overheads if (o.model, o.stream) == ("gpt-4o", True))
    direct = timings("gpt-4o", "direct", True)
    routed = timings("gpt-4o", "gateway", True)
    for q, total_gap, ttfb_gap in (
        (0.5, overhead.total_p50, overhead.ttfb_p50),
        (0.99, overhead.total_p99, overhead.ttfb_p99),
    ):
        want_total = expected([t for t, _ in routed], q) - expected([t for t, _ in direct], q)
        want_ttfb = expected([f for _, f in routed], q) - expected([f for _, f in direct], q)
        assert total_gap == pytest.approx(want_total)
        assert ttfb_gap == pytest.approx(want_ttfb)
    assert overhead.total_p50 == pytest.approx(15.0)  # the fixed cost timings() adds
    assert len(summary.overheads) == 4


def test_report_latency_is_the_first_spelling_as_a_subcommand(
    sample_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "latency", str(sample_csv)]) == 0
    spelled_out = capsys.readouterr().out
    assert main(["report", str(sample_csv)]) == 0
    assert capsys.readouterr().out == spelled_out
    assert "1 file, 186 rows" in spelled_out


def test_cli_prints_the_table(sample_csv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(sample_csv)]) == 0
    out = capsys.readouterr().out
    assert "2026-11-24 to 2026-11-24 · 1 file, 186 rows" in out

    cells = table_row(out, "gpt-4o", "no", "gateway")
    totals = [t for t, _ in timings("gpt-4o", "gateway", False)]
    assert cells[3:5] == ["25", "8.0%"]
    assert_printed(cells[5:8], [expected(totals, q) for q in (0.5, 0.9, 0.99)])

    cells = table_row(out, "gpt-35-turbo", "yes", "direct")
    ttfbs = [f for _, f in timings("gpt-35-turbo", "direct", True)]
    assert cells[3:5] == ["23", "0.0%"]
    assert_printed(cells[8:11], [expected(ttfbs, q) for q in (0.5, 0.9, 0.99)])
    assert_printed(cells[11:], [expected(first_tokens(ttfbs), q) for q in (0.5, 0.9, 0.99)])
    assert table_row(out, "gpt-35-turbo", "no", "direct")[11:] == ["-", "-", "-"]

    overhead_table = out.split("Gateway overhead", 1)[1]
    cells = table_row(overhead_table, "gpt-4o", "yes")
    routed = [t for t, _ in timings("gpt-4o", "gateway", True)]
    direct = [t for t, _ in timings("gpt-4o", "direct", True)]
    gap_p99 = expected(routed, 0.99) - expected(direct, 0.99)
    assert cells[2:4] == ["23/23", "23/23"]  # the good rows each side rests on, of all
    assert cells[4] == "+15.00"
    assert_printed(cells[5:6], [gap_p99])
    ratio = expected(routed, 0.5) / expected(direct, 0.5)  # gateway / direct, as make bench says
    assert cells[10] == f"{ratio:.2f}x"
    assert table_row(overhead_table, "gpt-4o", "no")[2:4] == ["23/23", "23/25"]


def test_out_writes_png_and_html(
    sample_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["report", str(sample_csv), "--out", str(out)]) == 0
    png = (out / "report.png").read_bytes()
    assert png.startswith(PNG_MAGIC)
    assert len(png) > 10_000
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<svg" in page and "<img" not in page  # the chart is drawn in the page itself
    totals = [t for t, _ in timings("gpt-4o", "gateway", False)]
    assert f'<td class="num">{expected(totals, 0.5):.1f}</td>' in page
    assert "<td>gpt-35-turbo</td>" in page
    assert "+15.0" in page
    assert "1 file, 186 rows" in page
    assert "report.html" in capsys.readouterr().out


def test_html_escapes_every_cell(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [make_row("<script>x</script>", "direct", False, 100.0, 100.0)]
    source = tmp_path / "odd.csv"
    source.write_text(to_csv(rows), encoding="utf-8")
    assert main(["report", str(source), "--out", str(tmp_path / "out")]) == 0
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "<script>" not in page
    assert "&lt;script&gt;x&lt;/script&gt;" in page
    assert "no model has successful rows on both" in capsys.readouterr().out


def test_folder_source_is_read_recursively(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for day in (20, 24):
        folder = tmp_path / "results" / "2026" / "11" / f"{day}"
        folder.mkdir(parents=True)
        rows = [make_row(f"model-{day}", "direct", False, 100.0 + i, 50.0) for i in range(5)]
        (folder / "run-1.csv").write_text(to_csv(rows), encoding="utf-8")
    (tmp_path / "results" / "notes.txt").write_text("not a CSV", encoding="utf-8")
    assert main(["report", str(tmp_path / "results")]) == 0
    out = capsys.readouterr().out
    assert "2 files, 10 rows" in out
    assert table_row(out, "model-20", "no", "direct")[3:6] == ["5", "0.0%", "102.0"]
    assert table_row(out, "model-24", "no", "direct")[3] == "5"


def test_dates_filter_file_sources_by_request_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [make_row("early", "direct", False, 10.0, 10.0, start=datetime(2026, 11, 20, 8))]
    rows += [make_row("late", "direct", False, 10.0, 10.0, start=datetime(2026, 11, 24, 8))]
    source = tmp_path / "mixed.csv"
    source.write_text(to_csv(rows), encoding="utf-8")
    assert main(["report", str(source), "--from", "2026-11-22"]) == 0
    out = capsys.readouterr().out
    assert "2026-11-22 to 2026-11-24" in out
    assert "late" in out
    assert "early" not in out


def write_run(root: Path, day: date, run_id: str, model: str) -> None:
    folder = root / f"{day:%Y/%m/%d}"
    folder.mkdir(parents=True, exist_ok=True)
    start = datetime(day.year, day.month, day.day, 12)
    rows = [make_row(model, "gateway", True, 200.0, 80.0, start=start) for _ in range(3)]
    (folder / f"{run_id}.csv").write_text(to_csv(rows), encoding="utf-8")


async def test_store_is_read_for_the_date_range(tmp_path: Path) -> None:
    write_run(tmp_path, date(2026, 11, 24), "run-b", "on-the-24th")
    write_run(tmp_path, date(2026, 11, 20), "run-a", "on-the-20th")
    store = FolderResults(tmp_path)
    loaded = await load_store(store, date(2026, 11, 22), date(2026, 11, 24))
    assert loaded.files == 1
    assert {row.model for row in loaded.rows} == {"on-the-24th"}
    everything = await load_store(store, date(2026, 11, 18), date(2026, 11, 24))
    assert (everything.files, len(everything.rows)) == (2, 6)


def test_cli_reads_the_probe_results_location(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_run(tmp_path, date(2026, 11, 24), "run-b", "on-the-24th")
    write_run(tmp_path, date(2026, 11, 20), "run-a", "on-the-20th")
    monkeypatch.setenv("TOLLGATE_PROBE_RESULTS", str(tmp_path))
    monkeypatch.delenv("TOLLGATE_STORAGE_CONNECTION_STRING", raising=False)
    assert main(["report", "--from", "2026-11-22", "--to", "2026-11-24"]) == 0
    out = capsys.readouterr().out
    assert "2026-11-22 to 2026-11-24 · 1 file, 3 rows" in out
    assert table_row(out, "on-the-24th", "yes", "gateway")[3:6] == ["3", "0.0%", "200.0"]
    assert "on-the-20th" not in out

    # Without --from, the range is the seven days up to --to: 13 to 19 November here.
    assert main(["report", "--to", "2026-11-19"]) == 1
    assert "no latency rows in 0 file(s)" in capsys.readouterr().err


def test_seed_csv_reads_with_path_unknown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed = tmp_path / "seed.csv"
    seed.write_text(
        "model,start_time,end_time,duration\n"
        "gpt-4o,2026-11-24 10:00:00.000000,2026-11-24 10:00:01.500000,0:00:01.500000\n"
        "gpt-4o,2026-11-24 10:01:00.000000,2026-11-24 10:01:02.500000,0:00:02.500000\n",
        encoding="utf-8",
    )
    assert main(["report", str(seed)]) == 0
    cells = table_row(capsys.readouterr().out, "gpt-4o", "no", "unknown")
    assert cells[3:8] == ["2", "0.0%", "2000.0", "2400.0", "2490.0"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["report", "no/such/place.csv"], "no/such/place.csv: no such file or folder"),
        (["report", "--from", "2026-11-24", "--to", "2026-11-20"], "is after --to"),
    ],
)
def test_bad_input_exits_2_with_a_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_a_csv_that_is_not_a_latency_csv_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.csv"
    other.write_text("name,value\na,1\n", encoding="utf-8")
    assert main(["report", str(other)]) == 2
    assert "other.csv: not a latency CSV" in capsys.readouterr().err


def test_bad_date_is_an_argparse_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "--from", "24/11/2026"])
    assert exit_info.value.code == 2
    assert "not a date (YYYY-MM-DD)" in capsys.readouterr().err
