"""Start the gateway, the simulator and Azurite as real processes on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Service:
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def start(
    args: list[str], env: dict[str, str], ready_url: str, url: str, log_path: Path
) -> Service:
    log = open(log_path, "wb")  # noqa: SIM115 - lives as long as the process
    # A test's gateway never runs the scheduled probe unless the test asks for it, and writes
    # nothing into the repository's own .tollgate/ unless the test says where.
    env = {
        "TOLLGATE_PROBE_ENABLED": "false",
        "TOLLGATE_USAGE_RECORDS": str(log_path.parent / "usage"),
        "TOLLGATE_CONTENT_LOG": str(log_path.parent / "content"),
        **env,
    }
    process = subprocess.Popen(
        args, cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
    )
    service = Service(process=process, url=url, log_path=log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{args} exited early:\n{service.log_text()}")
        try:
            requests.get(ready_url, timeout=1)
            return service
        except requests.ConnectionError:
            time.sleep(0.1)
    service.stop()
    raise RuntimeError(f"{args} did not become ready:\n{service.log_text()}")


def start_simulator(key: str, log_path: Path) -> Service:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "shared.simulator", "--port", str(port), "--key", key]
    return start(args, {}, f"{url}/_sim/requests", url, log_path)


def start_gateway(env: dict[str, str], log_path: Path) -> Service:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "shared.cli", "serve", "--port", str(port)]
    return start(args, env, f"{url}/healthz", url, log_path)


def tollgate(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # The audit log beside the test's registry (or in the temporary folder), never in the
    # repository's own .tollgate/, unless the test says where.
    registry = Path(env.get("TOLLGATE_REGISTRY", ""))
    folder = registry.parent if registry.is_absolute() else Path(tempfile.gettempdir())
    env = {"TOLLGATE_AUDIT_LOG": str(folder / "tollgate-audit"), **env}
    return subprocess.run(
        [sys.executable, "-m", "shared.cli", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
