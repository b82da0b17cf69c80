"""`make bench-clients`: the same minimal relay on aiohttp and on httpx, against the simulator,
at 1 and 64 connections, so the gateway's HTTP client is chosen by figures."""

from __future__ import annotations

import json
import secrets
import sys
import tempfile
from pathlib import Path

from bench.load import Load, Target, ensure_wrk, run_wrk
from bench.procs import free_port, start, start_simulator

BODY = json.dumps({"messages": [{"role": "user", "content": "Does Azure OpenAI support CMK?"}]})
PATH = "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"


def measure(seconds: float = 4.0) -> dict[str, dict[str, float]]:
    wrk = ensure_wrk(install=True)
    if wrk is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    work = Path(tempfile.mkdtemp(prefix="tollgate-clients-"))
    key = secrets.token_urlsafe(16)
    simulator = start_simulator(key, work / "simulator.log")
    figures: dict[str, dict[str, float]] = {}
    try:
        for client in ("aiohttp", "httpx"):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            args = [
                sys.executable,
                "-m",
                "uvicorn",
                "bench.minimal_proxy:app",
                "--port",
                str(port),
                "--no-access-log",
                "--log-level",
                "warning",
            ]
            env = {"BENCH_CLIENT": client, "BENCH_UPSTREAM": simulator.url}
            proxy = start(client, args, env, f"{url}/", url, work / f"{client}.log")
            try:
                target = Target(client, url + PATH, {"api-key": key})
                for connections in (1, 64):
                    load: Load = run_wrk(wrk, target, BODY.encode(), connections, seconds)
                    figures[f"{client} c{connections}"] = {
                        "rps": round(load.rps, 1),
                        "p50_ms": load.p50_ms,
                        "p99_ms": load.p99_ms,
                        "errors": load.error_count,
                    }
            finally:
                proxy.stop()
    finally:
        simulator.stop()
    return figures


def main() -> None:
    figures = measure()
    print(f"{'client':<16}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}")
    for name, f in figures.items():
        print(
            f"{name:<16}{f['rps']:>10.1f}{f['p50_ms']:>10.3f}{f['p99_ms']:>10.3f}{f['errors']:>8.0f}"
        )
    out = Path("bench-results")
    out.mkdir(exist_ok=True)
    (out / "clients.json").write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
