"""The scheduled latency probe: its CSV, its timer, its upload to Azurite, and its spool."""

from __future__ import annotations

import csv
import io
import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.functions.timer import TimerRequest
from azure.storage.blob import BlobServiceClient

from shared.host import ncrontab
from shared.probe import delivery as probe_delivery
from shared.probe.failures import failure_summary
from shared.probe.latency_csv import (
    COLUMNS,
    TIME_FORMAT,
    LatencyRow,
    parse_timedelta,
    read_csv,
    to_csv,
)
from shared.probe.measure import PROBE_MESSAGES
from tests.conftest import SIM_KEY, Live
from tests.support.functions import user_function
from tests.support.processes import free_port

SEED_COLUMNS = ["model", "start_time", "end_time", "duration"]


def row(**changes: object) -> LatencyRow:
    start = datetime(2026, 11, 25, 9, 30, 0, 123456)
    base = dict(
        model="gpt-4o",
        start=start,
        end=start + timedelta(seconds=1, microseconds=5),
        path="gateway",
        deployment="sim-gpt-4o",
        region="Simulated",
        stream=False,
        status=200,
        ttfb_ms=812.5,
        total_ms=1000.005,
        prompt_tokens=32,
        completion_tokens=16,
        error="",
    )
    return LatencyRow(**{**base, **changes})  # type: ignore[arg-type]


def test_csv_keeps_the_seed_columns_and_formats_first() -> None:
    text = to_csv([row(), row(stream=True, path="direct")])
    records = list(csv.DictReader(io.StringIO(text)))
    assert list(records[0])[:4] == SEED_COLUMNS and tuple(records[0]) == COLUMNS
    first = records[0]
    start = datetime.strptime(first["start_time"], TIME_FORMAT)
    end = datetime.strptime(first["end_time"], TIME_FORMAT)
    assert end - start == parse_timedelta(first["duration"]) == timedelta(seconds=1, microseconds=5)
    assert first["duration"] == "0:00:01.000005"
    assert list(read_csv(text)) == [row(), row(stream=True, path="direct")]


@pytest.mark.parametrize(
    "text", ["0:00:00.250000", "1 day, 2:03:04.5", "0:00:07", "2 days, 0:00:00"]
)
def test_timedelta_text_round_trips(text: str) -> None:
    assert str(parse_timedelta(text)) == str(parse_timedelta(str(parse_timedelta(text))))


def test_cells_excel_would_evaluate_are_neutralised() -> None:
    hostile = row(error='=HYPERLINK("http://x")', model="@SUM(A1)", region="+1", deployment="-2")
    record = next(csv.DictReader(io.StringIO(to_csv([hostile]))))
    for column in ("error", "model", "region", "deployment"):
        assert record[column].startswith("'")
    assert next(read_csv(to_csv([hostile]))) == hostile


def test_time_to_first_token_is_the_last_column_and_reads_back() -> None:
    streamed = row(stream=True, ttfb_ms=3.5, ttft_ms=250.125)
    text = to_csv([streamed, row()])
    records = list(csv.DictReader(io.StringIO(text)))
    assert COLUMNS[-1] == "ttft_ms" and list(records[0])[-1] == "ttft_ms"
    assert [r["ttft_ms"] for r in records] == ["250.125", ""]  # empty: not streamed
    assert list(read_csv(text)) == [streamed, row()]


def test_a_csv_from_before_ttft_reads_without_it() -> None:
    older = "\n".join(line.rsplit(",", 1)[0] for line in to_csv([row()]).splitlines())
    assert older.splitlines()[0].endswith(",completion_tokens,error")
    (only,) = read_csv(older + "\n")
    assert only == row() and only.ttft_ms is None


def test_failures_are_counted_per_path_and_status() -> None:
    rows = [row(path="direct")] * 5 + [row(path="gateway")] * 7
    rows += [row(path="gateway", status=401, error="HTTP 401 invalid_api_key")] * 7
    rows += [row(path="gateway", status=429, error="HTTP 429")]
    rows += [row(path="direct", status=0, error="ClientConnectorError")] * 2
    rows += [row(path="direct", error='stream error bad\ncode "x"')]  # one log line, plain
    assert failure_summary(rows) == (
        "3 of 8 direct requests failed (ClientConnectorError: 2, "
        "stream error badcode x: 1); "
        "8 of 15 gateway requests failed (401: 7, 429: 1)"
    )
    assert failure_summary([row(), row(path="direct")]) == ""


def test_a_seed_csv_reads_with_defaults() -> None:
    seed = (
        "model,start_time,end_time,duration\n"
        "gpt-4o,2026-11-25 09:30:00.000000,2026-11-25 09:30:01.500000,0:00:01.500000\n"
    )
    (only,) = read_csv(seed)
    assert only.total_ms == pytest.approx(1500.0) and only.path == "unknown"


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("0 */15 * * * *", datetime(2026, 11, 25, 13, 7, 3), datetime(2026, 11, 25, 13, 15)),
        ("0 */15 * * * *", datetime(2026, 11, 25, 23, 45), datetime(2026, 11, 26, 0, 0)),
        ("30 5 9 * * 1-5", datetime(2026, 11, 28, 10, 0), datetime(2026, 11, 30, 9, 5, 30)),
        ("0 0 0 1 1 *", datetime(2026, 6, 1), datetime(2027, 1, 1)),
        ("*/20 * * * * *", datetime(2026, 1, 1, 0, 0, 41), datetime(2026, 1, 1, 0, 1, 0)),
    ],
)
def test_ncrontab_next_occurrence(expression: str, after: datetime, expected: datetime) -> None:
    assert ncrontab.parse(expression).next_after(after) == expected


@pytest.mark.parametrize("bad", ["* * * * *", "61 * * * * *", "0 0 0 0 * *", "*/0 * * * * *"])
def test_ncrontab_rejects_bad_schedules(bad: str) -> None:
    with pytest.raises(ValueError):
        ncrontab.parse(bad)


def probe_env(
    live: Live, monkeypatch: pytest.MonkeyPatch, results: str, connection: str, spool: Path
) -> None:
    for name, value in {
        "TOLLGATE_SIMULATOR_URL": live.simulator.url,
        "TOLLGATE_SECRET_SIMULATOR_KEY": SIM_KEY,
        "TOLLGATE_PROBE_GATEWAY_URL": live.url,
        "TOLLGATE_SECRET_PROBE_GATEWAY_KEY": live.seed_key,
        "TOLLGATE_PROBE_REQUESTS": "2",
        "TOLLGATE_PROBE_MODELS": "gpt-4o,gpt-35-turbo",
        "TOLLGATE_PROBE_RESULTS": results,
        "TOLLGATE_STORAGE_CONNECTION_STRING": connection,
        "TOLLGATE_PROBE_SPOOL": str(spool),
        "TOLLGATE_PROBE_ENABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)


def blobs(connection: str, container: str) -> dict[str, str]:
    with BlobServiceClient.from_connection_string(connection) as service:
        client = service.get_container_client(container)
        return {
            b.name: client.download_blob(b.name).readall().decode() for b in client.list_blobs()
        }


def run_logs(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "tollgate.probe" and "probe run" in r.msg]


async def test_timer_handler_probes_and_uploads_a_csv_to_azurite(
    live: Live,
    azurite_connection: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    probe_env(live, monkeypatch, "probes", azurite_connection, tmp_path / "spool")
    with caplog.at_level("INFO", logger="tollgate.probe"):
        await user_function("latency_probe")(TimerRequest(past_due=False))
    (logged,) = run_logs(caplog)
    assert logged.levelno == logging.INFO
    assert logged.getMessage().endswith(": 16 requests, none failed")
    ((name, text),) = blobs(azurite_connection, "probes").items()
    assert re.fullmatch(rf"{datetime.now(UTC):%Y/%m/%d}/\d{{8}}T\d{{6}}Z-[0-9a-f]{{6}}\.csv", name)
    rows = list(read_csv(text))
    assert len(rows) == 2 * 2 * 2 * 2  # models x requests x (stream, not) x (direct, gateway)
    assert all(r.ok and r.total_ms > 0 and r.ttfb_ms <= r.total_ms for r in rows), rows
    assert all(r.completion_tokens and r.prompt_tokens for r in rows)
    streamed = [r for r in rows if r.stream]
    assert all(r.ttft_ms is not None and r.ttfb_ms <= r.ttft_ms <= r.total_ms for r in streamed)
    assert all(r.ttft_ms is None for r in rows if not r.stream)
    gateway = [r for r in rows if r.path == "gateway"]
    assert {r.deployment for r in gateway} == {"sim-gpt-4o", "sim-gpt-35-turbo"}
    assert {r.region for r in rows} == {"Simulated"}
    paths = [r.path for r in rows if r.model == "gpt-4o" and not r.stream]
    assert paths == ["direct", "gateway", "gateway", "direct"]  # alternating order


async def test_failed_upload_is_retried_spooled_and_delivered_by_the_next_run(
    live: Live,
    azurite_connection: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    spool = tmp_path / "spool"
    dead = re.sub(r"127\.0\.0\.1:\d+", f"127.0.0.1:{free_port()}", azurite_connection)
    probe_env(live, monkeypatch, "spooled", dead, spool)
    monkeypatch.setenv("TOLLGATE_PROBE_MODELS", "gpt-4o")
    monkeypatch.setenv("TOLLGATE_PROBE_REQUESTS", "1")
    monkeypatch.setattr(probe_delivery, "BACKOFF_SECONDS", 0.01)
    handler = user_function("latency_probe")
    with caplog.at_level("WARNING", logger="tollgate.probe"):
        await handler(TimerRequest(past_due=False))
    assert sum("attempt" in r.getMessage() for r in caplog.records) == probe_delivery.ATTEMPTS
    assert any("rows kept in" in r.getMessage() for r in caplog.records)
    (spooled,) = spool.rglob("*.csv")
    spooled_rows = list(read_csv(spooled.read_text()))
    assert len(spooled_rows) == 4

    monkeypatch.setenv("TOLLGATE_STORAGE_CONNECTION_STRING", azurite_connection)
    await handler(TimerRequest(past_due=False))
    uploaded = blobs(azurite_connection, "spooled")
    assert len(uploaded) == 2 and not list(spool.rglob("*.csv"))
    assert list(read_csv(uploaded[spooled.relative_to(spool).as_posix()])) == spooled_rows


async def test_without_a_probe_key_the_direct_path_is_still_timed(
    live: Live, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    probe_env(live, monkeypatch, str(tmp_path / "results"), "", tmp_path / "spool")
    monkeypatch.delenv("TOLLGATE_STORAGE_CONNECTION_STRING")
    monkeypatch.delenv("TOLLGATE_SECRET_PROBE_GATEWAY_KEY")
    monkeypatch.setenv("TOLLGATE_PROBE_REQUESTS", "1")
    await user_function("latency_probe")(TimerRequest(past_due=False))
    (written,) = (tmp_path / "results").rglob("*.csv")
    rows = list(read_csv(written.read_text()))
    assert {r.path for r in rows} == {"direct"} and len(rows) == 2 * 2


async def test_a_run_with_failed_requests_logs_a_warning_naming_them(
    live: Live, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    probe_env(live, monkeypatch, str(tmp_path / "results"), "", tmp_path / "spool")
    monkeypatch.delenv("TOLLGATE_STORAGE_CONNECTION_STRING")
    monkeypatch.setenv("TOLLGATE_SECRET_PROBE_GATEWAY_KEY", "tg_aaaaaaaaaaaa_wrong")
    monkeypatch.setenv("TOLLGATE_PROBE_MODELS", "gpt-4o")
    monkeypatch.setenv("TOLLGATE_PROBE_REQUESTS", "1")
    with caplog.at_level("INFO", logger="tollgate.probe"):
        await user_function("latency_probe")(TimerRequest(past_due=False))
    (logged,) = run_logs(caplog)
    assert logged.levelno == logging.WARNING
    assert logged.getMessage().endswith(": 2 of 2 gateway requests failed (401: 2)")
    everything = " ".join(r.getMessage() for r in caplog.records)
    assert "probe results uploaded" in everything  # the upload itself went well
    assert "wrong" not in everything and SIM_KEY not in everything
    assert PROBE_MESSAGES[1]["content"] not in everything


async def test_probe_off_by_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TOLLGATE_PROBE_ENABLED", "false")
    monkeypatch.setenv("TOLLGATE_PROBE_RESULTS", str(tmp_path / "results"))
    await user_function("latency_probe")(TimerRequest(past_due=False))
    assert not (tmp_path / "results").exists()
