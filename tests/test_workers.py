"""`tollgate serve --workers N` runs N worker processes on one socket (it once ran one), each
with the same JSON logs; stopping the server stops them all."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import requests

from tests.conftest import SIM_KEY, Live, new_system
from tests.support.processes import free_port, start


def workers_of(pid: int) -> list[int]:
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(c) for c in (task / "children").read_text().split()]
    return [c for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def test_two_workers_serve_and_log_json(live: Live, tmp_path: Path) -> None:
    env = {
        "TOLLGATE_REGISTRY": str(tmp_path / "systems.json"),
        "TOLLGATE_SIMULATOR_URL": live.simulator.url,
        "TOLLGATE_SECRET_SIMULATOR_KEY": SIM_KEY,
    }
    key = new_system(env, "app")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "shared.cli", "serve", "--port", str(port), "--workers", "2"]
    server = start(args, env, f"{url}/healthz", url, tmp_path / "server.log")
    try:
        deadline = time.monotonic() + 20
        while len(workers_of(server.process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        workers = workers_of(server.process.pid)
        assert len(workers) == 2
        body = {"messages": [{"role": "user", "content": "hi"}]}
        for _ in range(10):  # a new connection each: the kernel spreads them over the workers
            response = requests.post(
                f"{url}/gateway/chat/completions/gpt-4o",
                headers={"api-key": key},
                json=body,
                timeout=30,
            )
            assert response.status_code == 200
    finally:
        server.stop()
    lines = [line for line in server.log_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line JSON, the workers' too
    access = [r for r in records if r["logger"] == "tollgate.access"]
    assert len(access) == 10
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
