"""Usage records: exactly one per request of every kind, right tokens, safe through storage
outages and shutdowns, and free of prompt text and keys."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import requests
from azure.storage.blob import BlobServiceClient

from shared.usage.record import UsageRecord
from tests.conftest import SIM_KEY, new_system
from tests.support.azurite import DiskAzurite
from tests.support.processes import Service, start_gateway, start_simulator

CANARY = "CANARY-PROMPT-9f3e1d"
CHAT: dict[str, Any] = {"messages": [{"role": "user", "content": f"hello {CANARY}"}]}


def records(connection: str, container: str) -> list[UsageRecord]:
    with BlobServiceClient.from_connection_string(connection) as service:
        client = service.get_container_client(container)
        if not client.exists():
            return []
        lines: list[str] = []
        for blob in client.list_blobs():
            lines += client.download_blob(blob.name).readall().decode().splitlines()
    return [UsageRecord.from_json(line) for line in lines if line]


def wait_for(connection: str, container: str, n: int, seconds: float = 15) -> list[UsageRecord]:
    deadline = time.monotonic() + seconds
    while len(found := records(connection, container)) < n and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


@dataclass
class Rig:
    gateway: Service
    simulator: Service
    azurite: DiskAzurite
    connection: str
    key: str
    capped_key: str
    work: Path
    env: dict[str, str]

    def sim(self, path: str, body: dict[str, Any]) -> None:
        requests.post(f"{self.simulator.url}/_sim/{path}", json=body, timeout=5).raise_for_status()


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    work = tmp_path_factory.mktemp("usage")
    simulator = start_simulator(SIM_KEY, work / "simulator.log")
    azurite = DiskAzurite(work / "azurite", work / "azurite.log")
    azurite.start()
    connection = azurite.connection_string
    try:
        env = {
            "TOLLGATE_REGISTRY": str(work / "systems.json"),
            "TOLLGATE_SIMULATOR_URL": simulator.url,
            "TOLLGATE_SECRET_SIMULATOR_KEY": SIM_KEY,
            "TOLLGATE_STORAGE_CONNECTION_STRING": connection,
            "TOLLGATE_USAGE_FLUSH_SECONDS": "0.3",
        }
        key, capped = (
            new_system(env, "app", limits={"rpm": 100000}),
            new_system(env, "capped", limits={"rpm": 0}),
        )
        gateway = start_gateway({**env, "TOLLGATE_USAGE_RECORDS": "usage"}, work / "gateway.log")
        try:
            yield Rig(gateway, simulator, azurite, connection, key, capped, work, env)
        finally:
            gateway.stop()
    finally:
        simulator.stop()
        azurite.stop()


async def _call(session: aiohttp.ClientSession, url: str, key: str, body: Any) -> dict[str, Any]:
    async with session.post(url, headers={"api-key": key}, json=body) as resp:
        raw = await resp.read()
        return {"status": resp.status, "id": resp.headers["x-request-id"], "raw": raw}


async def _disconnect(session: aiohttp.ClientSession, url: str, key: str) -> str:
    async with session.post(url, headers={"api-key": key}, json={**CHAT, "stream": True}) as resp:
        await resp.content.readline()
        return resp.headers["x-request-id"]


async def test_one_record_per_request_of_every_kind(rig: Rig) -> None:
    base = f"{rig.gateway.url}/gateway"
    chat, emb = f"{base}/chat/completions/gpt-4o", f"{base}/embeddings/text-embedding-3-small"
    rig.sim("faults", {"status": 500, "deployment": "gpt-4-turbo", "count": 2})
    async with aiohttp.ClientSession() as s:
        calls = await asyncio.gather(
            *(_call(s, chat, rig.key, CHAT) for _ in range(4)),
            *(_call(s, chat, rig.key, {**CHAT, "stream": True}) for _ in range(4)),
            *(_call(s, emb, rig.key, {"input": ["one", "two three"]}) for _ in range(4)),
            *(_call(s, chat, rig.capped_key, CHAT) for _ in range(3)),
            *(_call(s, f"{base}/chat/completions/gpt-4-turbo", rig.key, CHAT) for _ in range(2)),
            _call(s, chat, "tg_canary000000_CANARYKEYCANARYKEY", CHAT),
        )
        rig.sim("config", {"tokens_per_second": 20})
        try:
            gone = [await _disconnect(s, chat, rig.key) for _ in range(2)]
        finally:
            rig.sim("config", {"tokens_per_second": 0})
    found = {r.request_id: r for r in wait_for(rig.connection, "usage", 20)}
    ids = [c["id"] for c in calls] + gone
    assert len(found) == 20 and set(found) == set(ids)

    import json

    whole = json.loads(calls[0]["raw"])["usage"]
    for c in calls[:8]:  # chat, whole and streamed: the upstream's own usage
        r = found[c["id"]]
        assert (r.status, r.prompt_tokens, r.completion_tokens) == (
            200,
            whole["prompt_tokens"],
            whole["completion_tokens"],
        )
        assert r.deployment == "sim-gpt-4o" and r.system == "app" and r.attempts == 1
    assert sum(found[c["id"]].total_tokens for c in calls[:8]) == 8 * whole["total_tokens"]
    emb_usage = json.loads(calls[8]["raw"])["usage"]
    assert all(found[c["id"]].prompt_tokens == emb_usage["prompt_tokens"] for c in calls[8:12])
    for c in calls[12:15]:
        r = found[c["id"]]
        assert (r.status, r.error_code, r.total_tokens) == (429, "rate_limit_exceeded", 0)
    for c in calls[15:17]:
        r = found[c["id"]]
        assert r.status == 500 and r.total_tokens == 0 and r.deployment == "sim-gpt-4-turbo"
    unknown = found[calls[17]["id"]]
    assert (unknown.status, unknown.system, unknown.key_id) == (401, "-", "-")
    for request_id in gone:
        r = found[request_id]
        assert r.client_disconnected and 0 < r.completion_tokens < whole["completion_tokens"]
    assert all(r.time.endswith("Z") and r.total_ms > 0 for r in found.values())


def test_no_prompt_text_or_key_in_records_or_logs(rig: Rig) -> None:
    requests.post(
        f"{rig.gateway.url}/gateway/chat/completions/gpt-4o",
        headers={"api-key": rig.key},
        json=CHAT,
        timeout=30,
    )
    wait_for(rig.connection, "usage", 21)
    blobs = "".join(r.to_json() for r in records(rig.connection, "usage"))
    for text in (blobs, rig.gateway.log_text()):
        for secret in (CANARY, "CANARYKEY", rig.key, rig.capped_key, SIM_KEY):
            assert secret not in text


def test_storage_outage_loses_nothing_and_sigterm_flushes(rig: Rig) -> None:
    env = {**rig.env, "TOLLGATE_USAGE_RECORDS": "outage"}
    gateway = start_gateway(env, rig.work / "outage.log")
    url = f"{gateway.url}/gateway/chat/completions/gpt-4o"
    try:
        post = lambda: requests.post(url, headers={"api-key": rig.key}, json=CHAT, timeout=30)  # noqa: E731
        for _ in range(3):
            assert post().status_code == 200
        assert len(wait_for(rig.connection, "outage", 3)) == 3
        rig.azurite.stop()
        for _ in range(4):
            assert post().status_code == 200  # requests go on while storage is down
        deadline = time.monotonic() + 10
        while "usage write" not in gateway.log_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "records kept" in gateway.log_text()
        rig.azurite.start()
        assert len(wait_for(rig.connection, "outage", 7)) == 7
        held = {**env, "TOLLGATE_USAGE_FLUSH_SECONDS": "600", "TOLLGATE_USAGE_RECORDS": "sigterm"}
        slow = start_gateway(held, rig.work / "sigterm.log")
        for _ in range(3):
            requests.post(
                f"{slow.url}/gateway/chat/completions/gpt-4o",
                headers={"api-key": rig.key},
                json=CHAT,
                timeout=30,
            )
        assert records(rig.connection, "sigterm") == []  # held in memory until the stop
        slow.process.send_signal(signal.SIGTERM)
        slow.process.wait(timeout=20)
        assert len(records(rig.connection, "sigterm")) == 3
    finally:
        gateway.stop()
    ids = [r.request_id for r in records(rig.connection, "outage")]
    assert len(ids) == len(set(ids)) == 7  # none lost, none twice
