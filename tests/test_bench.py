"""`tollgate bench`: the seed's benchmark as a command, against the live gateway."""

from __future__ import annotations

import re
from pathlib import Path

from shared.probe.latency_csv import read_csv
from tests.conftest import SIM_KEY, Live
from tests.support.processes import tollgate


def bench_env(live: Live) -> dict[str, str]:
    return {
        "TOLLGATE_SIMULATOR_URL": live.simulator.url,
        "TOLLGATE_SECRET_SIMULATOR_KEY": SIM_KEY,
        "TOLLGATE_BENCH_KEY": live.seed_key,
        "TOLLGATE_PROBE_GATEWAY_URL": live.url,
    }


def test_two_models_three_runs_write_twelve_rows(live: Live, tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    args = ["bench", "--models", "gpt-4o,gpt-35-turbo", "--runs", "3", "--paths", "direct,gateway"]
    result = tollgate(*args, "--out", str(out), env=bench_env(live))
    assert result.returncode == 0, result.stderr
    rows = list(read_csv(out.read_text()))
    assert len(rows) == 12
    assert sorted((r.model, r.path) for r in rows).count(("gpt-4o", "gateway")) == 3
    assert all(r.ok and 0 < r.ttfb_ms <= r.total_ms and r.end > r.start for r in rows)
    assert all(not r.stream for r in rows)
    progress = [line for line in result.stderr.splitlines() if line.startswith("[")]
    assert len(progress) == 12 and progress[-1].startswith("[12/12]")
    assert "12 requests, 0 failed" in result.stderr
    assert live.seed_key not in result.stderr + result.stdout
    overheads = result.stdout.splitlines()  # one line per model, as make bench reports it
    assert sorted(line.split(" ", 1)[0] for line in overheads) == ["gpt-35-turbo", "gpt-4o"]
    assert all(re.search(r"at p50 \(\d+\.\d\dx direct\)", line) for line in overheads)


def test_concurrent_streamed_bench(live: Live, tmp_path: Path) -> None:
    out = tmp_path / "c.csv"
    args = ["bench", "--models", "gpt-4o", "--runs", "4", "--stream", "both", "--concurrency", "4"]
    result = tollgate(*args, "--out", str(out), env=bench_env(live))
    assert result.returncode == 0, result.stderr
    rows = list(read_csv(out.read_text()))
    assert len(rows) == 4 * 2 * 2
    assert {(r.path, r.stream) for r in rows} == {
        ("direct", False),
        ("direct", True),
        ("gateway", False),
        ("gateway", True),
    }
    assert all(r.ok and r.completion_tokens for r in rows)


def test_gateway_only_with_a_bad_key_records_the_failures(live: Live, tmp_path: Path) -> None:
    out = tmp_path / "bad.csv"
    env = {**bench_env(live), "TOLLGATE_BENCH_KEY": "tg_aaaaaaaaaaaa_wrong"}
    args = ["bench", "--models", "gpt-4o", "--runs", "2", "--paths", "gateway"]
    result = tollgate(*args, "--out", str(out), env=env)
    assert result.returncode == 0
    rows = list(read_csv(out.read_text()))
    assert [(r.status, r.error) for r in rows] == [(401, "HTTP 401 invalid_api_key")] * 2


def test_bad_arguments_exit_2_with_a_message(live: Live, tmp_path: Path) -> None:
    out = str(tmp_path / "x.csv")
    env = bench_env(live)
    unknown = tollgate("bench", "--models", "gpt-9", "--out", out, env=env)
    assert (
        unknown.returncode == 2 and "gpt-9" in unknown.stderr and "Traceback" not in unknown.stderr
    )
    paths = tollgate("bench", "--paths", "sideways", "--out", out, env=env)
    assert paths.returncode == 2 and "--paths" in paths.stderr
