"""Opt-in content logging: only opted-in systems' prompts and completions are kept, in their own
store and never in logs or usage records; `tollgate systems purge` erases a system."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobServiceClient

from shared.registry.purge import PurgeReport, purge_content, purge_usage
from shared.storage.append import record_writer
from tests.conftest import SIM_KEY, create_key
from tests.support.processes import Service, start_gateway, start_simulator, tollgate

CANARY = "CANARY-CONTENT-7c1a2b"
EMAIL = "jane.doe@example.com"


@dataclass
class Rig:
    gateway: Service
    env: dict[str, str]
    work: Path
    keys: dict[str, str]


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    work = tmp_path_factory.mktemp("content")
    simulator = start_simulator(SIM_KEY, work / "simulator.log")
    env = {
        "TOLLGATE_REGISTRY": str(work / "systems.json"),
        "TOLLGATE_SIMULATOR_URL": simulator.url,
        "TOLLGATE_SECRET_SIMULATOR_KEY": SIM_KEY,
        "TOLLGATE_USAGE_RECORDS": str(work / "usage"),
        "TOLLGATE_CONTENT_LOG": str(work / "content"),
        "TOLLGATE_AUDIT_LOG": str(work / "audit"),
        "TOLLGATE_USAGE_FLUSH_SECONDS": "0.2",
        "TOLLGATE_LOG_LEVEL": "DEBUG",
    }
    for system in ("optin", "plain"):
        assert tollgate("systems", "create", system, "--models", "*", env=env).returncode == 0
    update = tollgate(
        "systems",
        "update",
        "optin",
        "--content-logging",
        "on",
        "--content-retention-days",
        "7",
        "--redaction",
        "mask",
        "--json",
        env=env,
    )
    assert update.returncode == 0, update.stderr
    assert json.loads(update.stdout)["content_logging"] == {"retention_days": 7}
    keys = {system: create_key(env, system) for system in ("optin", "plain")}
    gateway = start_gateway(env, work / "gateway.log")
    try:
        yield Rig(gateway, env, work, keys)
    finally:
        gateway.stop()
        simulator.stop()


def _lines(root: Path) -> list[dict[str, Any]]:
    files = sorted(root.rglob("*.jsonl")) if root.is_dir() else []
    return [json.loads(line) for f in files for line in f.read_text().splitlines() if line]


def _wait(root: Path, n: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 15
    while len(found := _lines(root)) < n and time.monotonic() < deadline:
        time.sleep(0.1)
    return found


def _chat(rig: Rig, system: str, stream: bool) -> requests.Response:
    prompt = f"{CANARY} write to {EMAIL}"
    body: dict[str, Any] = {"messages": [{"role": "user", "content": prompt}], "stream": stream}
    url = f"{rig.gateway.url}/gateway/chat/completions/gpt-4o"
    response = requests.post(url, headers={"api-key": rig.keys[system]}, json=body, timeout=30)
    assert response.status_code == 200, response.text
    return response


def test_only_opted_in_content_is_kept_and_purge_erases_the_system(rig: Rig) -> None:
    modes = (False, True)
    answers = {(s, stream): _chat(rig, s, stream) for s in ("optin", "plain") for stream in modes}
    usage = _wait(rig.work / "usage", 4)
    content = _wait(rig.work / "content", 2)
    assert len(usage) == 4
    assert {r["system"] for r in content} == {"optin"}
    assert [p.name for p in (rig.work / "content").iterdir()] == ["optin"]  # one prefix
    by_id = {r["request_id"]: r for r in content}
    for stream in (False, True):
        answer = answers[("optin", stream)]
        record = by_id[answer.headers["x-request-id"]]
        text = record["request"]["messages"][0]["content"]
        assert CANARY in text and EMAIL not in text and "[EMAIL]" in text  # after redaction
        assert record["response_text"] == answer.text  # what the client got
        assert record["retention_until"] > record["time"]
    # the prompt is in the content store only: never in the gateway's log or usage records
    assert CANARY not in rig.gateway.log_text()
    assert not any(CANARY in json.dumps(r) for r in usage)

    refused = tollgate("systems", "purge", "optin", env=rig.env)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    first = tollgate("systems", "purge", "optin", "--yes", env=rig.env)
    assert first.returncode == 3, first.stderr  # this hour's usage file is still live
    report = json.loads(first.stdout)
    assert report["registry"] == "deleted" and report["content_files_deleted"] >= 1
    assert report["complete"] is False and sum(s["records"] for s in report["skipped"]) == 2
    assert _lines(rig.work / "content") == []
    assert "optin" not in json.loads((rig.work / "systems.json").read_text())["systems"]

    final = tollgate("systems", "purge", "optin", "--yes", "--include-current-hour", env=rig.env)
    assert final.returncode == 0, final.stderr
    report = json.loads(final.stdout)
    assert report["registry"] == "absent" and report["usage_records_total"] == 2
    left = _lines(rig.work / "usage")
    assert len(left) == 2 and {r["system"] for r in left} == {"plain"}
    audit = tollgate("audit", "--json", env=rig.env)
    assert audit.returncode == 0 and "systems purge" in audit.stdout
    assert requests.get(f"{rig.gateway.url}/healthz", timeout=5).ok


def test_past_hours_are_rewritten_and_current_ones_reported(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    old, live = now - timedelta(hours=2), now
    for hour in (old, live):
        folder = tmp_path / f"{hour:%Y/%m/%d/%H}"
        folder.mkdir(parents=True)
        lines = [{"system": s, "n": i} for i, s in enumerate(("a", "b", "a"))]
        (folder / "i1.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    report = PurgeReport("a")
    asyncio.run(purge_usage(str(tmp_path), None, None, "a", report, now=now))
    assert report.usage_records_removed == {f"{old:%Y/%m/%d/%H}/i1.jsonl": 2}
    assert [s["records"] for s in report.skipped] == [2]
    assert [r["system"] for r in _lines(tmp_path / f"{old:%Y/%m/%d/%H}")] == ["b"]
    assert len(_lines(tmp_path / f"{live:%Y/%m/%d/%H}")) == 3


async def test_blob_stores_are_purged(azurite_connection: str) -> None:
    past = datetime.now(UTC) - timedelta(hours=3)
    name = f"{past:%Y/%m/%d/%H}/inst.jsonl"
    usage = record_writer("purge-usage/records", azurite_connection, None)
    content = record_writer("purge-content", azurite_connection, None)
    lines = b'{"system":"gone","n":1}\n{"system":"kept","n":2}\n{"system":"gone","n":3}\n'
    try:
        await usage.append(name, lines)
        await content.append(f"gone/{name}", b'{"system":"gone"}\n')
        await content.append(f"kept/{name}", b'{"system":"kept"}\n')
        report = PurgeReport("gone")
        await purge_usage("purge-usage/records", azurite_connection, None, "gone", report)
        assert report.usage_records_removed == {name: 2} and not report.skipped
        assert await purge_content("purge-content", azurite_connection, None, "gone") == 1
        late = b'{"system":"kept","n":4}\n'  # the writer's next append: resynchronised, retried
        with pytest.raises(HttpResponseError):
            await usage.append(name, late)
        await usage.append(name, late)
    finally:
        await usage.aclose()
        await content.aclose()
    with BlobServiceClient.from_connection_string(azurite_connection) as service:
        data = service.get_blob_client("purge-usage", f"records/{name}").download_blob().readall()
        assert [json.loads(x)["n"] for x in data.splitlines()] == [2, 4]
        names = [b.name for b in service.get_container_client("purge-content").list_blobs()]
        assert names == [f"kept/{name}"]
