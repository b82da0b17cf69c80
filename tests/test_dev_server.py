"""`tollgate run` (what `make run` starts): gateway, simulator, demo system and a fresh key."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import requests
from openai import AzureOpenAI

from tests.support.processes import Service, free_port, start


def run_dev_server(work: Path, name: str) -> tuple[Service, str]:
    port, sim_port = free_port(), free_port()
    env = {
        "TOLLGATE_REGISTRY": str(work / "systems.json"),
        "TOLLGATE_SIMULATOR_URL": f"http://127.0.0.1:{sim_port}",
        "TOLLGATE_SECRET_SIMULATOR_KEY": "",
    }
    args = [sys.executable, "-m", "shared.cli", "run", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    service = start(args, env, f"{url}/healthz", url, work / f"{name}.log")
    match = re.search(r"key \(shown once\): (\S+)", service.log_text())
    assert match, service.log_text()
    return service, match.group(1)


def test_dev_server_serves_the_seed_clients_with_the_printed_key(tmp_path: Path) -> None:
    service, key = run_dev_server(tmp_path, "first")
    try:
        client = AzureOpenAI(azure_endpoint=service.url, api_key=key, api_version="2024-02-01")
        reply = client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hello there"}]
        )
        assert "hello there" in str(reply.choices[0].message.content)
        response = requests.post(
            f"{service.url}/gateway/chat/completions/gpt-35-turbo",
            headers={"api-key": key, "systemId": "demo"},
            json={"messages": [{"role": "user", "content": "hi"}]},
            timeout=30,
        )
        assert response.status_code == 200, response.text
    finally:
        service.stop()


def test_each_start_retires_the_previous_demo_key(tmp_path: Path) -> None:
    first, old_key = run_dev_server(tmp_path, "first")
    first.stop()
    second, new_key = run_dev_server(tmp_path, "second")
    try:
        assert new_key != old_key
        url = f"{second.url}/v1/models"
        assert requests.get(url, headers={"api-key": new_key}, timeout=30).status_code == 200
        assert requests.get(url, headers={"api-key": old_key}, timeout=30).status_code == 401
    finally:
        second.stop()
