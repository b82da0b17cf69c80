"""`make bench` runs and writes well-formed results; speed is never asserted here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.load import Target, run_client, time_first_chunks
from bench.run import BODIES, CHAT_PATH
from shared.simulator.app import start_simulator
from shared.simulator.config import SimulatorConfig

ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PHASE_NUMBERS = ("requests", "duration_s", "rps", "p50_ms", "p90_ms", "p99_ms")


def test_quick_bench_writes_results_and_chart(tmp_path: Path) -> None:
    # --no-install: wrk when the machine has it, else the bench's own client; never apt-get.
    # --workers 2: the full path on two worker processes too, and how it scales.
    args = [sys.executable, "-m", "bench.run", "--quick", "--no-install", "--out", str(tmp_path)]
    args += ["--workers", "2"]
    result = subprocess.run(
        args, cwd=ROOT, capture_output=True, text=True, timeout=110, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads((tmp_path / "bench.json").read_text())
    assert {"machine", "settings", "paths", "phases", "ttfb", "gateways", "targets"} <= set(data)
    assert data["machine"]["nproc"] >= 1 and data["machine"]["python"]
    assert data["settings"]["quick"] is True
    paths = set(data["paths"])
    assert {"direct", "reference", "gateway"} <= paths
    assert len(data["phases"]) == 2 * 2 * len(paths)  # chat and stream, 1 and 64 connections
    for phase in data["phases"]:
        assert all(phase[key] > 0 for key in PHASE_NUMBERS), phase
        assert phase["p50_ms"] <= phase["p90_ms"] <= phase["p99_ms"]
        if phase["connections"] == 1:
            assert phase["error_count"] == 0, phase
        if phase["path"] == "direct":
            assert phase["cpu_ms_per_request"] is None
        else:
            assert phase["cpu_ms_per_request"] > 0
    assert set(data["ttfb"]["paths"]) == paths
    assert all(spread["p50_ms"] > 0 for spread in data["ttfb"]["paths"].values())
    for name, gateway in data["gateways"].items():
        assert name in paths and gateway["peak_rss_mb"] > 0
        assert len(gateway["overhead"]) == 4
    assert "reference" not in data["gateways"] and data["reference"]["peak_rss_mb"] > 0
    assert set(data["versus_reference"]) == set(data["gateways"])
    for ratios in data["versus_reference"].values():
        assert all(ratios[key] > 0 for key in ratios if key.startswith(("rps_", "cpu_", "peak")))
    assert data["settings"]["pinning"].startswith("none")  # workers need every CPU
    assert data["scaling"]["workers"] == 2 and data["scaling"]["rps_ratio_chat_c64"] > 0
    assert "Scaling: 2 workers give" in result.stdout
    assert "gateway_workers" in paths  # measured, but not judged on one worker's targets
    assert all(target["path"] != "gateway_workers" for target in data["targets"])
    assert "Against the reference relay" in result.stdout
    assert data["targets"] and all(isinstance(t["met"], bool) for t in data["targets"])
    assert data["targets_judged_on"] in data["gateways"]
    assert (tmp_path / "bench.png").read_bytes()[:8] == PNG_MAGIC
    assert "Targets (issue #15, one worker)" in result.stdout and "no PII policy" in result.stdout


async def test_own_client_drives_load_and_times_first_chunks() -> None:
    """The client the bench falls back to when wrk is missing."""
    runner, url = await start_simulator(SimulatorConfig(api_keys={"k"}))
    try:
        target = Target("direct", url + CHAT_PATH, {"api-key": "k"})
        load = await run_client(target, BODIES["chat"], connections=4, seconds=0.5)
        assert load.requests > 0 and load.error_count == 0
        assert 0 < load.p50_ms <= load.p99_ms
        refused = Target("direct", url + CHAT_PATH, {"api-key": "wrong"})
        bad = await run_client(refused, BODIES["chat"], connections=2, seconds=0.2)
        assert bad.errors.get("status", 0) == bad.requests > 0
        timings = await time_first_chunks([target], BODIES["stream"], samples=3, warmup=1)
        assert len(timings["direct"]) == 3 and all(t > 0 for t in timings["direct"])
    finally:
        await runner.cleanup()
