"""`tollgate systems usage`: the live counters of a system's limits, read from the real Redis
(127.0.0.1:6379) after real traffic through a gateway, against what the requests used; and a
plain answer when there is no Redis to read."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import new_system
from tests.support.cluster import Cluster, cluster_of, day_used, tpm_used, wait_until_known
from tests.support.processes import tollgate

LIMITS = {
    "rpm": 100,
    "tpm": 100_000,
    "concurrency": 5,
    "tokens_per_day": 1_000_000,
    "tokens_per_month": 9_000_000,
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with cluster_of(tmp_path_factory.mktemp("cli-usage"), 1) as running:
        yield running


def usage(env: dict[str, str], system: str) -> dict[str, Any]:
    shown = tollgate("systems", "usage", system, "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    counters: dict[str, Any] = json.loads(shown.stdout)
    return counters


def counted(found: dict[str, Any]) -> dict[tuple[str, str | None, str], int]:
    return {(c["scope"], c["name"], c["counter"]): c["used"] for c in found["counters"]}


def test_counters_match_the_traffic(cluster: Cluster) -> None:
    system = f"cli-{uuid.uuid4().hex[:8]}"
    key = new_system(cluster.env, system, limits=LIMITS)
    key_id = key.split("_")[1]
    for target in (["--model", "gpt-4o", "--tpm", "50000"], ["--key", key_id, "--rpm", "10"]):
        assert tollgate("systems", "limits", system, *target, env=cluster.env).returncode == 0
    gateway = cluster.gateways[0].url
    wait_until_known(gateway, key)
    time.sleep(1.0)  # the gateway reads the model and key limits set after the system
    used = 0
    for words in ("one", "two words", "three words here"):
        answer = requests.post(
            f"{gateway}/gateway/chat/completions/gpt-4o",
            headers={"api-key": key},
            json={"messages": [{"role": "user", "content": words}], "max_tokens": 16},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        used += answer.json()["usage"]["total_tokens"]
    deadline = time.monotonic() + 10  # each request settles just after its response
    while day_used(system) != used and time.monotonic() < deadline:
        time.sleep(0.05)

    found = usage(cluster.env, system)
    assert found["system"] == system and found["redis"] == "redis://127.0.0.1:6379/0"
    assert counted(found) == {
        ("system", None, "concurrency"): 0,
        ("system", None, "rpm"): 3,
        ("system", None, "tpm"): used,
        ("system", None, "tokens_per_day"): used,
        ("system", None, "tokens_per_month"): used,
        ("model", "gpt-4o", "tpm"): used,
        ("key", key_id, "rpm"): 3,
    }
    assert used == day_used(system) == tpm_used(system)  # the counters the limits keep
    windows = [c for c in found["counters"] if c["counter"] in ("rpm", "tpm")]
    assert all(0 < c["resets_in_ms"] <= 60_000 for c in windows)
    rpm = next(c for c in found["counters"] if c["counter"] == "rpm" and c["scope"] == "system")
    assert rpm["limit"] == 100 and rpm["remaining"] == 97

    table = tollgate("systems", "usage", system, env=cluster.env)
    rows = [line.split("  ") for line in table.stdout.splitlines()]
    assert table.stdout.splitlines()[0].split() == [
        "SCOPE", "COUNTER", "USED", "LIMIT", "LEFT", "RESETS", "IN"
    ]  # fmt: skip
    assert len(rows) == 1 + len(found["counters"])
    assert "counters in redis://127.0.0.1:6379/0 at " in table.stderr


def test_without_redis_it_says_the_counts_cannot_be_read(tmp_path: Path) -> None:
    env = {"TOLLGATE_REGISTRY": str(tmp_path / "systems.json"), "TOLLGATE_REDIS_URL": ""}
    new_system(env, "cli-local", limits={"rpm": 60})
    shown = tollgate("systems", "usage", "cli-local", env=env)
    assert shown.returncode == 1 and shown.stdout == ""
    assert "counts the limits in its own memory" in shown.stderr
    assert "cannot be read from outside it" in shown.stderr and "TOLLGATE_REDIS_URL" in shown.stderr
    unreachable = tollgate(
        "systems", "usage", "cli-local", env={**env, "TOLLGATE_REDIS_URL": "redis://127.0.0.1:1/0"}
    )
    assert unreachable.returncode == 2 and "cannot read the counters from" in unreachable.stderr
    unlimited = {**env, "TOLLGATE_REDIS_URL": "redis://127.0.0.1:6379/0"}
    new_system(unlimited, "cli-free")
    free = tollgate("systems", "usage", "cli-free", env=unlimited)
    assert free.stdout == "system 'cli-free' has no limits: nothing is counted\n"
