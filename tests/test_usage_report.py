"""`tollgate report usage`: usage records in the hour layout, summed per group, against sums and
percentiles computed here independently; from a folder, given files and an Azurite container."""

from __future__ import annotations

import asyncio
import csv
import io
import math
import re
from collections import defaultdict
from collections.abc import AsyncGenerator, Callable, Iterable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from shared.cli.main import main
from shared.report import usage_files
from shared.report.usage import Tally, read_usage
from shared.usage.record import UsageRecord

SYSTEMS = ("alpha", "beta", "gamma")
MODELS = ("gpt-4o", "gpt-35-turbo")
DAYS = tuple(date(2026, 11, 22) + timedelta(days=n) for n in range(4))
HOURS = (0, 9, 23)
INSTANCES = ("inst-a", "inst-b")
ALL_DAYS = ["--from", "2026-11-22", "--to", "2026-11-25"]
MEASURES = 11  # with the cache columns: some records are hits


def record(n: int, at: datetime, system: str, model: str) -> UsageRecord:
    """The n-th record: numbers that vary unevenly with n; every 7th a 429, every 11th a 500."""
    status = 429 if n % 7 == 0 else 500 if n % 11 == 0 else 200
    prompt = 10 + (n * 37) % 101
    completion = 0 if status >= 400 else 5 + (n * 53) % 89
    cost = round(prompt * 0.0000025 + completion * 0.00001, 8)
    hit = status == 200 and n % 13 == 0  # answered by the response cache: nothing used
    saved = (prompt + completion, cost) if hit else (0, 0.0)
    if hit:
        prompt = completion = 0
        cost = 0.0
    return UsageRecord(
        time=f"{at:%Y-%m-%dT%H:%M:%S}.{n % 1000:03d}Z",
        request_id=f"req-{n}",
        system=system,
        key_id=f"key-{system}-{n % 2}",
        route=("gateway", "azure", "openai")[n % 3],
        operation="chat",
        model=model,
        deployment="" if status == 429 else f"{model}-{'east' if n % 3 else 'west'}",
        status=status,
        error_code="" if status == 200 else "upstream_error",
        stream=n % 2 == 0,
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        reserved_tokens=prompt + 100,
        settled_tokens=prompt + completion,
        cost=cost,
        ttfb_ms=50.0 + n % 13,
        total_ms=200.0 + (n * 7919) % 1500 + n * 0.25,
        attempts=1 + n % 2,
        client_ip="10.0.0.1",
        client_disconnected=False,
        cache="hit" if hit else "",
        saved_tokens=saved[0],
        saved_cost=saved[1],
    )


def make_records() -> list[UsageRecord]:
    """Four days, three hours a day (23:00 next to the day's end), three systems of uneven
    sizes, two models; and a few callers the gateway could not identify."""
    records: list[UsageRecord] = []
    n = 0
    for day in DAYS:
        for hour in HOURS:
            start = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
            for size, system in enumerate(SYSTEMS, start=3):
                for model in MODELS:
                    for i in range(size):
                        n += 1
                        at = start + timedelta(minutes=(n * 7) % 60, seconds=i)
                        records.append(record(n, at, system, model))
            unknown = record(n + 1000, start, "-", "-")
            unknown.key_id, unknown.status, unknown.deployment = "-", 401, ""
            records.append(unknown)
    return records


RECORDS = make_records()


def hour_file(root: Path, r: UsageRecord, instance: str) -> Path:
    return root / r.time[:4] / r.time[5:7] / r.time[8:10] / r.time[11:13] / f"{instance}.jsonl"


def write_layout(root: Path, records: Iterable[UsageRecord]) -> None:
    for i, r in enumerate(records):
        path = hour_file(root, r, INSTANCES[i % len(INSTANCES)])
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as out:
            out.write(r.to_json() + "\n")


@pytest.fixture
def records_dir(tmp_path: Path) -> Path:
    root = tmp_path / "usage"
    write_layout(root, RECORDS)
    return root


# The independent computation.

DIMENSION: dict[str, Callable[[UsageRecord], str]] = {
    "system": lambda r: r.system,
    "model": lambda r: r.model,
    "day": lambda r: r.time[:10],
    "hour": lambda r: f"{r.time[:10]} {r.time[11:13]}:00",
    "key": lambda r: r.key_id,
    "deployment": lambda r: r.deployment,
    "route": lambda r: r.route,
    "status": lambda r: str(r.status),
}


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks, written out."""
    ordered = sorted(values)
    h = (len(ordered) - 1) * q
    lo, hi = math.floor(h), math.ceil(h)
    return ordered[lo] * (1 - (h - lo)) + ordered[hi] * (h - lo)


def within(records: Iterable[UsageRecord], since: str, until: str) -> list[UsageRecord]:
    return [r for r in records if since <= r.time[:10] <= until]


def grouped(
    records: Iterable[UsageRecord], by: tuple[str, ...]
) -> dict[tuple[str, ...], list[UsageRecord]]:
    groups: dict[tuple[str, ...], list[UsageRecord]] = defaultdict(list)
    for r in records:
        groups[tuple(DIMENSION[name](r) for name in by)].append(r)
    return groups


def measures(records: list[UsageRecord]) -> dict[str, float]:
    totals = [r.total_ms for r in records]
    errors = sum(r.status >= 400 for r in records)
    return {
        "requests": len(records),
        "errors": errors,
        "error_rate": errors / len(records),
        "prompt_tokens": sum(r.prompt_tokens for r in records),
        "completion_tokens": sum(r.completion_tokens for r in records),
        "total_tokens": sum(r.total_tokens for r in records),
        "cost": sum(r.cost for r in records),
        "p50_total_ms": percentile(totals, 0.5),
        "p95_total_ms": percentile(totals, 0.95),
        "cache_hits": sum(r.cache == "hit" for r in records),
        "saved_cost": sum(r.saved_cost for r in records),
    }


# Reading the output.


def table_rows(output: str, by: int) -> dict[tuple[str, ...], list[str]]:
    """Table lines by their leading cells (the totals row by ("(total)",))."""
    rows: dict[tuple[str, ...], list[str]] = {}
    measures = len(header_cells(output)) - by  # 9, or 11 with the cache's columns
    for line in output.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) == by + measures and "p95 ms" not in cells:
            rows[tuple(cells[:by])] = cells[by:]
        elif cells[0] == "(total)":
            rows[("(total)",)] = cells[-measures:]
    return rows


def assert_cells(cells: list[str], want: dict[str, float]) -> None:
    """The printed cells: counts exact, err% to 0.1, cost to 4 decimals, ms to 0.1."""
    number = [float(cell.replace(",", "").rstrip("%")) for cell in cells]
    assert number[:2] == [want["requests"], want["errors"]]
    assert number[2] == pytest.approx(want["error_rate"] * 100, abs=0.051)
    assert number[3:6] == [want["prompt_tokens"], want["completion_tokens"], want["total_tokens"]]
    assert number[6] == pytest.approx(want["cost"], abs=0.00005001)
    assert number[7:9] == pytest.approx([want["p50_total_ms"], want["p95_total_ms"]], abs=0.051)
    if len(number) == MEASURES:  # the cache's columns: some records are hits
        assert number[9] == want["cache_hits"]
        assert number[10] == pytest.approx(want["saved_cost"], abs=0.00005001)


def assert_table(output: str, records: list[UsageRecord], by: tuple[str, ...]) -> None:
    rows = table_rows(output, len(by))
    groups = grouped(records, by)
    shown = {tuple(cell or "(none)" for cell in key): group for key, group in groups.items()}
    assert set(rows) == {*shown, ("(total)",)}
    for key, group in shown.items():
        assert_cells(rows[key], measures(group))
    assert_cells(rows[("(total)",)], measures(records))


def read_csv_file(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as source:
        return list(csv.DictReader(source))


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# The tests.


@pytest.mark.parametrize("chunk_bytes", [usage_files.CHUNK_BYTES, 97])
def test_bill_by_system_model_day_from_a_folder(
    records_dir: Path,
    chunk_bytes: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(usage_files, "CHUNK_BYTES", chunk_bytes)  # 97: lines span chunks
    code, out, err = run(["report", "usage", str(records_dir)], capsys)
    assert code == 0, err
    assert err == ""
    files = len(list(records_dir.rglob("*.jsonl")))
    assert files == len(DAYS) * len(HOURS) * len(INSTANCES)
    assert f"Usage 2026-11-22 to 2026-11-25 (UTC) · {files} files, {len(RECORDS)} records" in out
    assert_table(out, RECORDS, ("system", "model", "day"))
    assert table_rows(out, 3)[("beta", "gpt-4o", "2026-11-23")][0] == "12"  # 4 a hour, 3 hours


def test_by_system_only(records_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["report", "usage", str(records_dir), "--by", "system"], capsys)
    assert code == 0
    assert_table(out, RECORDS, ("system",))
    assert len(table_rows(out, 1)) == len(SYSTEMS) + 2  # and "-", and the totals


def test_location_is_read_for_the_dates_only(
    records_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TOLLGATE_USAGE_RECORDS", str(records_dir))
    monkeypatch.delenv("TOLLGATE_STORAGE_CONNECTION_STRING", raising=False)
    argv = ["report", "usage", "--from", "2026-11-23", "--to", "2026-11-24", "--by", "system,day"]
    code, out, _ = run(argv, capsys)
    assert code == 0
    kept = within(RECORDS, "2026-11-23", "2026-11-24")
    files = 2 * len(HOURS) * len(INSTANCES)  # only the two days' folders are listed
    assert f"Usage 2026-11-23 to 2026-11-24 (UTC) · {files} files, {len(kept)} records" in out
    assert_table(out, kept, ("system", "day"))

    # Without --from: the seven days up to --to, 15 to 21 November here: nothing.
    code, _, err = run(["report", "usage", "--to", "2026-11-21"], capsys)
    assert code == 1
    assert "no usage records from 2026-11-15 to 2026-11-21 in 0 file(s)" in err


def test_given_files_are_filtered_by_the_record_date(
    records_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A file whose records span two days (as a file written elsewhere might).
    mixed = records_dir.parent / "mixed.jsonl"
    mixed.write_text("".join(r.to_json() + "\n" for r in RECORDS), encoding="utf-8")
    argv = ["report", "usage", str(mixed), "--from", "2026-11-25", "--by", "model"]
    code, out, _ = run(argv, capsys)
    assert code == 0
    assert "Usage 2026-11-25 to 2026-11-25 (UTC) · 1 file," in out
    assert_table(out, within(RECORDS, "2026-11-25", "2026-11-25"), ("model",))


def test_default_range_is_the_last_seven_days(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    ages = {"today": 0, "six-days-ago": 6, "seven-days-ago": 7}
    records = [
        record(n, today - timedelta(days=age), system, "gpt-4o")
        for n, (system, age) in enumerate(ages.items(), start=1)
    ]
    write_layout(tmp_path, records)
    monkeypatch.setenv("TOLLGATE_USAGE_RECORDS", str(tmp_path))
    code, out, _ = run(["report", "usage", "--by", "system"], capsys)
    assert code == 0
    assert set(table_rows(out, 1)) == {("today",), ("six-days-ago",), ("(total)",)}


def test_csv_for_finance(
    records_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    odd = record(5000, datetime(2026, 11, 24, 12, tzinfo=UTC), "alpha", "=HYPERLINK(1)")
    write_layout(records_dir, [odd])
    records = [*RECORDS, odd]
    out_csv = tmp_path / "bill" / "usage.csv"
    out_csv.parent.mkdir()
    by = ("system", "model", "day")
    code, out, _ = run(["report", "usage", str(records_dir), "--csv", str(out_csv)], capsys)
    assert code == 0
    assert f"Wrote {out_csv}" in out
    rows = read_csv_file(out_csv)
    assert list(rows[0]) == [*by, *measures(records), "currency"]
    assert {row["currency"] for row in rows} == {"USD"}  # the price table's, unless told
    *groups, totals = rows
    assert [totals[name] for name in by] == ["(total)", "", ""]

    expected = grouped(records, by)
    assert len(groups) == len(expected)
    for row in groups:
        key = tuple(row[name] for name in by)
        if key[1] == "'=HYPERLINK(1)":  # neutralised: a spreadsheet shows it as text
            key = (key[0], "=HYPERLINK(1)", key[2])
        want = measures(expected[key])
        assert {name: float(row[name]) for name in want} == pytest.approx(want, abs=0.0006)
    assert any(row["system"] == "-" for row in groups)  # "-" alone is left as it is

    want = measures(records)
    assert {name: float(totals[name]) for name in want} == pytest.approx(want, abs=0.0006)
    for name in ("requests", "errors", "prompt_tokens", "total_tokens"):
        assert sum(int(row[name]) for row in groups) == int(totals[name]) == want[name]
    assert sum(float(row["cost"]) for row in groups) == pytest.approx(want["cost"], abs=1e-5)


@pytest.mark.parametrize(
    "by", [("status",), ("route", "status"), ("hour",), ("key",), ("deployment", "model")]
)
def test_every_dimension_groups(
    records_dir: Path, tmp_path: Path, by: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    out_csv = tmp_path / "out.csv"
    argv = ["report", "usage", str(records_dir), "--by", ",".join(by), "--csv", str(out_csv)]
    assert run(argv, capsys)[0] == 0
    *groups, _ = read_csv_file(out_csv)
    expected = grouped(RECORDS, by)
    assert [tuple(row[name] for name in by) for row in groups] == sorted(
        expected,
        key=lambda key: tuple(int(k) if n == "status" else k for n, k in zip(by, key, strict=True)),
    )
    for row in groups:
        want = measures(expected[tuple(row[name] for name in by)])
        assert {name: float(row[name]) for name in want} == pytest.approx(want, abs=0.0006)


def test_malformed_lines_are_skipped_and_counted(
    records_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(usage_files, "CHUNK_BYTES", 64)
    target = hour_file(records_dir, RECORDS[0], INSTANCES[0])
    good = RECORDS[0].to_json()
    bad = [
        "not json",
        "{}",  # no fields
        "[1, 2]",
        good.replace('"2026-11-22T', '"yesterday-'),  # no time
        good.replace('"cost":', '"cost":"free","was":'),
        good.replace('"status":', '"status":"200","was":'),
        "\xff\xfe".encode("latin-1").decode("utf-8", "surrogateescape"),
    ]
    with target.open("ab") as handle:
        for line in bad:
            handle.write(line.encode("utf-8", "surrogateescape") + b"\n\n")  # blanks: ignored
        handle.write(good[:40].encode())  # a line still being written
    code, out, err = run(["report", "usage", str(records_dir)], capsys)
    assert code == 0
    lines = sum(1 for _ in target.open(encoding="utf-8", errors="replace"))
    first_bad = lines - 2 * len(bad)  # the unfinished line is the last
    assert f"skipped {len(bad)} malformed lines (the first: {target}:{first_bad})" in err
    assert "skipped 1 unfinished last line" in err
    assert_table(out, RECORDS, ("system", "model", "day"))


def header_cells(output: str) -> list[str]:
    line = next(line for line in output.splitlines() if "  p95 ms" in line)
    return re.split(r"\s{2,}", line.strip())


def test_cost_is_shown_in_the_given_currency(
    records_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(["report", "usage", str(records_dir), "--by", "system"], capsys)
    assert code == 0 and "cost (USD)" in header_cells(out)
    out_csv = tmp_path / "eur.csv"
    argv = ["report", "usage", str(records_dir), "--by", "system", "--currency", "eur"]
    code, out, _ = run([*argv, "--csv", str(out_csv)], capsys)
    assert code == 0 and "cost (EUR)" in header_cells(out)
    assert header_cells(out)[-2:] == ["cache hits", "saved (EUR)"]  # some records are hits
    assert_table(out, RECORDS, ("system",))  # the same figures, labelled
    assert {row["currency"] for row in read_csv_file(out_csv)} == {"EUR"}
    assert "no prices configured" not in out


@pytest.mark.parametrize("bad", ["dollars", "US", "=1+1", "", "€€"])
def test_a_currency_is_a_code_or_a_sign(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "usage", "--currency", bad])
    assert exit_info.value.code == 2
    assert "is not a currency: give a code such as USD" in capsys.readouterr().err


def test_without_prices_the_report_says_so_instead_of_zeros(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unpriced = [replace(r, cost=0.0, saved_cost=0.0) for r in RECORDS]
    write_layout(tmp_path / "usage", unpriced)
    out_csv = tmp_path / "bill.csv"
    argv = ["report", "usage", str(tmp_path / "usage"), "--by", "system", "--csv", str(out_csv)]
    code, out, _ = run(argv, capsys)
    assert code == 0
    assert "no prices configured: costs are 0" in out
    headers = header_cells(out)
    assert not [h for h in headers if h.startswith("cost")]
    assert headers[-4:] == ["total tok", "p50 ms", "p95 ms", "cache hits"]
    totals = next(line for line in out.splitlines() if line.startswith("(total)"))
    want = measures(RECORDS)
    cells = re.split(r"\s{2,}", totals)
    assert [float(c.replace(",", "")) for c in cells[4:7]] == [
        want["prompt_tokens"],
        want["completion_tokens"],
        want["total_tokens"],
    ]
    assert len(cells) == 1 + MEASURES - 2  # no cost cell, nor a saved one
    rows = read_csv_file(out_csv)  # the spreadsheet keeps its columns: cost 0 and currency
    assert {(row["cost"], row["currency"]) for row in rows} == {("0.000000", "USD")}


def test_no_records_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "2026" / "11" / "24" / "10" / "x.jsonl"
    junk.parent.mkdir(parents=True)
    junk.write_text("nothing to see\n", encoding="utf-8")
    code, out, err = run(["report", "usage", str(tmp_path)], capsys)
    assert (code, out) == (1, "")
    assert "skipped 1 malformed line" in err
    assert f"no usage records in 1 file(s) from {tmp_path}" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["report", "usage", "no/such/dir"], "no/such/dir: no such file or folder"),
        (["report", "usage", "--from", "2026-11-24", "--to", "2026-11-20"], "is after --to"),
        (["report", "usage", "--out", "x"], "--out is for latency reports"),
        (["report", "r.csv", "--by", "system"], "--by and --csv are options of"),
    ],
)
def test_bad_input_exits_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(argv, capsys)
    assert code == 2
    assert message in err and "Traceback" not in err


def test_bad_location_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TOLLGATE_USAGE_RECORDS", "https://acct.blob.core.windows.net/")
    code, _, err = run(["report", "usage"], capsys)
    assert code == 2
    assert "usage records location: https://acct.blob.core.windows.net/: no container" in err


def test_unknown_dimension_is_an_argparse_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "usage", "--by", "system,colour"])
    assert exit_info.value.code == 2
    assert "cannot group by colour" in capsys.readouterr().err


class CountingFiles:
    """Files that yield one record each, counting how many are being read at once."""

    def __init__(self, count: int, failing: str = ""):
        self.count, self.failing, self.reading, self.most = count, failing, 0, 0

    def describe(self) -> str:
        return "counting"

    async def names(self) -> list[str]:
        return [f"file-{n}" for n in range(self.count)]

    async def chunks(self, name: str) -> AsyncGenerator[bytes, None]:
        self.reading += 1
        self.most = max(self.most, self.reading)
        try:
            for _ in range(3):
                await asyncio.sleep(0)
            if name == self.failing:
                raise OSError(f"{name}: cannot read it")
            yield (RECORDS[0].to_json() + "\n").encode()
        finally:
            self.reading -= 1

    async def aclose(self) -> None:
        return None


async def test_files_are_read_a_few_at_a_time() -> None:
    files = CountingFiles(20)
    tally = Tally(("system",), None, None)
    await read_usage(files, tally, concurrency=3)
    assert (tally.files, tally.records, files.most) == (20, 20, 3)


async def test_a_failing_file_fails_the_read_with_its_own_error() -> None:
    files = CountingFiles(20, failing="file-7")
    with pytest.raises(OSError, match="file-7: cannot read it"):
        await read_usage(files, Tally(("system",), None, None), concurrency=3)
    assert files.reading == 0  # the other reads were stopped


async def upload(connection: str, container: str, prefix: str, blobs: dict[str, bytes]) -> None:
    from azure.storage.blob import BlobType
    from azure.storage.blob.aio import ContainerClient

    async with ContainerClient.from_connection_string(connection, container) as client:
        await client.create_container()
        for name, data in blobs.items():
            await client.upload_blob(f"{prefix}/{name}", data, blob_type=BlobType.APPENDBLOB)
        # Outside the prefix, and outside the dates: never read.
        stray = RECORDS[0].to_json().encode() + b"\n"
        await client.upload_blob("other/2026/11/23/00/x.jsonl", stray)
        await client.upload_blob(f"{prefix}/2026/11/21/23/x.jsonl", stray)


def test_container_on_azurite(
    records_dir: Path,
    azurite_connection: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    blobs = {
        p.relative_to(records_dir).as_posix(): p.read_bytes() for p in records_dir.rglob("*.jsonl")
    }
    asyncio.run(upload(azurite_connection, "usage-report", "records", blobs))
    monkeypatch.setenv("TOLLGATE_USAGE_RECORDS", "usage-report/records")
    monkeypatch.setenv("TOLLGATE_STORAGE_CONNECTION_STRING", azurite_connection)
    monkeypatch.setattr(usage_files, "CHUNK_BYTES", 1000)  # several range reads a blob
    code, out, err = run(["report", "usage", *ALL_DAYS, "--by", "system,model"], capsys)
    assert code == 0, err
    files = len(DAYS) * len(HOURS) * len(INSTANCES)
    assert f"· {files} files, {len(RECORDS)} records from usage-report/records" in out
    assert_table(out, RECORDS, ("system", "model"))

    # The same table as from the folder.
    monkeypatch.delenv("TOLLGATE_STORAGE_CONNECTION_STRING")
    monkeypatch.setenv("TOLLGATE_USAGE_RECORDS", str(records_dir))
    _, from_folder, _ = run(["report", "usage", *ALL_DAYS, "--by", "system,model"], capsys)
    assert from_folder.split("\n", 1)[1] == out.split("\n", 1)[1]  # all but the headline


def test_missing_container_exits_2(
    azurite_connection: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TOLLGATE_USAGE_RECORDS", "no-such-container")
    monkeypatch.setenv("TOLLGATE_STORAGE_CONNECTION_STRING", azurite_connection)
    code, _, err = run(["report", "usage", *ALL_DAYS], capsys)
    assert code == 2
    assert "tollgate: no-such-container: The specified container does not exist." in err


def test_table_text_parses_back(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The printed thousands separators and percent signs round-trip through the helpers."""
    write_layout(tmp_path, RECORDS * 5)
    code, out, _ = run(["report", "usage", str(tmp_path), "--by", "route"], capsys)
    assert code == 0
    assert re.search(rf"^\(total\)\s+{len(RECORDS) * 5:,}\s", out, re.MULTILINE)
    assert_table(out, RECORDS * 5, ("route",))
    assert io.StringIO(out).readline().startswith("Usage 2026-11-22 to 2026-11-25")
