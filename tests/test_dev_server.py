"""`tollgate run` (what `make run` starts): gateway, simulator and the seed's system with a key
that lasts across restarts; a second start on a taken port changes nothing; `tollgate bench`
and a separately started simulator work against it with nothing set by hand."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests
from openai import AzureOpenAI

from tests.conftest import new_system
from tests.support.processes import ROOT, Service, free_port, start

README = (ROOT / "README.md").read_text(encoding="utf-8")


def env_for(work: Path, sim_port: int) -> dict[str, str]:
    return {
        "TOLLGATE_REGISTRY": str(work / "systems.json"),
        "TOLLGATE_SIMULATOR_URL": f"http://127.0.0.1:{sim_port}",
        "TOLLGATE_SECRET_SIMULATOR_KEY": "",
        "TOLLGATE_REGISTRY_REFRESH_SECONDS": "0.2",
    }


def cli(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`tollgate ARGS` in a process of its own, with `env` over the test's environment."""
    return subprocess.run(
        [sys.executable, "-m", "shared.cli", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_dev_server(work: Path, name: str, port: int = 0, sim_port: int = 0) -> tuple[Service, str]:
    port, sim_port = port or free_port(), sim_port or free_port()
    args = [sys.executable, "-m", "shared.cli", "run", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    service = start(args, env_for(work, sim_port), f"{url}/healthz", url, work / f"{name}.log")
    match = re.search(r"Demo system '0003R3' \(the seed's\), key: (\S+)", service.log_text())
    assert match, service.log_text()
    return service, match.group(1)


def test_the_seeds_requests_snippet_works_with_the_printed_key(tmp_path: Path) -> None:
    service, key = run_dev_server(tmp_path, "first")
    try:
        snippet = re.search(r"```python\n(import requests\n.*?)```", README, re.DOTALL)
        assert snippet, "the README's requests snippet"
        code = snippet.group(1).replace("http://127.0.0.1:7071", service.url)
        code = code.replace('"tg_..."', repr(key))
        ran = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
        )
        assert ran.returncode == 0, ran.stderr
        assert "choices" in ran.stdout and "error" not in ran.stdout, ran.stdout
        client = AzureOpenAI(azure_endpoint=service.url, api_key=key, api_version="2024-02-01")
        reply = client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hello there"}]
        )
        assert "hello there" in str(reply.choices[0].message.content)
    finally:
        service.stop()


def test_a_restart_keeps_the_demo_key(tmp_path: Path) -> None:
    first, key = run_dev_server(tmp_path, "first")
    first.stop()
    second, again = run_dev_server(tmp_path, "second")
    try:
        assert again == key
        answer = requests.get(f"{second.url}/v1/models", headers={"api-key": key}, timeout=30)
        assert answer.status_code == 200
        assert (tmp_path / "demo-key").stat().st_mode & 0o077 == 0  # only its owner reads it
    finally:
        second.stop()


def test_a_second_start_on_a_taken_port_changes_nothing(tmp_path: Path) -> None:
    port, sim_port = free_port(), free_port()
    first, key = run_dev_server(tmp_path, "first", port, sim_port)
    try:
        registry = (tmp_path / "systems.json").read_bytes()
        probe_key = (tmp_path / "probe-key").read_text().strip()
        second = cli(env_for(tmp_path, sim_port), "run", "--port", str(port))
        assert second.returncode == 1
        assert "already in use" in second.stderr and "Traceback" not in second.stderr
        assert (tmp_path / "systems.json").read_bytes() == registry
        for used in (key, probe_key):
            answer = requests.get(f"{first.url}/v1/models", headers={"api-key": used}, timeout=30)
            assert answer.status_code == 200
    finally:
        first.stop()


def test_bench_times_both_paths_against_make_run_with_nothing_set(tmp_path: Path) -> None:
    port, sim_port = free_port(), free_port()
    service, _ = run_dev_server(tmp_path, "first", port, sim_port)
    try:
        out = tmp_path / "bench.csv"
        env = {
            **env_for(tmp_path, sim_port),
            "TOLLGATE_PROBE_GATEWAY_URL": service.url,
            "TOLLGATE_BENCH_KEY": "",
        }
        args = ["bench", "--models", "gpt-4o", "--runs", "2", "--out", str(out)]
        ran = cli(env, *args, timeout=120)
        assert ran.returncode == 0, ran.stderr
        assert "4 requests, 0 failed" in ran.stderr
    finally:
        service.stop()


def test_serve_reaches_a_separately_started_simulator_with_nothing_set(tmp_path: Path) -> None:
    sim_port, port = free_port(), free_port()
    sim_url, url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{port}"
    env = env_for(tmp_path, sim_port)
    simulator = start(
        [sys.executable, "-m", "shared.cli", "simulator", "--port", str(sim_port)],
        env,
        f"{sim_url}/_sim/requests",
        sim_url,
        tmp_path / "sim.log",
    )
    gateway = start(
        [sys.executable, "-m", "shared.cli", "serve", "--port", str(port)],
        env,
        f"{url}/healthz",
        url,
        tmp_path / "gw.log",
    )
    try:
        key = new_system(env, "app")
        body: dict[str, Any] = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
        for _ in range(20):  # the new key reaches the gateway within its refresh
            answer = requests.post(
                f"{url}/v1/chat/completions", headers={"api-key": key}, json=body, timeout=30
            )
            if answer.status_code != 401:
                break
            time.sleep(0.2)
        assert answer.status_code == 200, answer.text
    finally:
        gateway.stop()
        simulator.stop()


def test_ctrl_c_ends_run_cleanly(tmp_path: Path) -> None:
    service, _ = run_dev_server(tmp_path, "first")
    service.process.send_signal(signal.SIGINT)
    assert service.process.wait(timeout=30) == 0
    assert "Traceback" not in service.log_text()


def test_a_bad_configuration_stops_serve_with_its_reason_and_no_traceback(tmp_path: Path) -> None:
    env = {**env_for(tmp_path, free_port()), "TOLLGATE_CONFIG_JSON": '{"upstreams": {}}'}
    ran = cli(env, "serve", "--port", str(free_port()))
    assert ran.returncode != 0
    output = ran.stdout + ran.stderr
    assert "needs a non-empty 'upstreams' object" in output
    assert "Traceback" not in output
