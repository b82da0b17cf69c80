"""`/readyz` (issue #21): not ready while Redis is stopped, while the registry cannot be read,
and while no upstream key can be read (Key Vault through the stand-in); ready again when each
recovers. The body names its checks, never a secret, URL or key name."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import new_system
from tests.support.keyvault_standin import KeyVaultStandIn
from tests.support.processes import Service, start_gateway, start_simulator
from tests.support.redis_server import PrivateRedis

SECRET = "simulator-key"
KEY = "upstream-key-readiness-0123456789"
CLIENT_ID = "7f8d2c1e-0000-4000-8000-00000000c1d1"


@dataclass
class Rig:
    gateway: Service
    redis: PrivateRedis
    kv: KeyVaultStandIn
    registry: Path
    key: str

    def ready(self) -> tuple[int, dict[str, Any]]:
        answer = requests.get(f"{self.gateway.url}/readyz", timeout=10)
        body = answer.json()
        text = answer.text
        for secret in (KEY, self.key, self.kv.vault_url, self.redis.url, SECRET):
            assert secret not in text
        return answer.status_code, body

    def eventually(self, status: int) -> dict[str, Any]:
        deadline = time.monotonic() + 10
        while True:
            code, body = self.ready()
            if code == status or time.monotonic() > deadline:
                assert code == status, body
                return body
            time.sleep(0.1)


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    work = tmp_path_factory.mktemp("readiness")
    redis = PrivateRedis(work)
    redis.start()
    with KeyVaultStandIn().in_thread() as kv:  # the upstream key is put there by the first test
        simulator = start_simulator(KEY, work / "simulator.log")
        env = {
            "TOLLGATE_REGISTRY": str(work / "systems.json"),
            "TOLLGATE_REGISTRY_REFRESH_SECONDS": "0.2",
            "TOLLGATE_SIMULATOR_URL": simulator.url,
            "TOLLGATE_KEYVAULT_URL": kv.vault_url,
            "TOLLGATE_KEYVAULT_CA_FILE": kv.ca_file,
            "TOLLGATE_KEYVAULT_VERIFY_CHALLENGE_RESOURCE": "false",
            "AZURE_CLIENT_ID": CLIENT_ID,
            "TOLLGATE_SECRET_SIMULATOR_KEY": "",
            "TOLLGATE_REDIS_URL": redis.url,
            **kv.credential_env(),
        }
        key = new_system(env, "app", models="gpt-4o")
        gateway = start_gateway(env, work / "gateway.log")
        try:
            yield Rig(gateway, redis, kv, work / "systems.json", key)
        finally:
            gateway.stop()
            simulator.stop()
            redis.stop()


def test_not_ready_until_an_upstream_key_can_be_read(rig: Rig) -> None:
    checks = rig.eventually(503)["checks"]  # the vault does not have the key yet
    assert checks == {
        "configuration": "ok",
        "registry": "ok",
        "redis": "ok",
        "upstream_keys": checks["upstream_keys"],
    }
    assert checks["upstream_keys"].startswith("unreadable for ")
    rig.kv.set_secret(SECRET, KEY)
    assert rig.eventually(200)["checks"]["upstream_keys"] == "ok"


def test_ready_when_every_check_passes_and_healthz_stays_bare(rig: Rig) -> None:
    body = rig.eventually(200)
    assert body == {
        "status": "ready",
        "checks": {
            "configuration": "ok",
            "registry": "ok",
            "redis": "ok",
            "upstream_keys": "ok",
        },
    }
    health = requests.get(f"{rig.gateway.url}/healthz", timeout=5)
    assert health.status_code == 200 and health.json() == {"status": "ok"}


def test_not_ready_while_redis_is_stopped(rig: Rig) -> None:
    rig.redis.stop()
    try:
        assert rig.eventually(503)["checks"]["redis"] == "unreachable"
    finally:
        rig.redis.start()
    assert rig.eventually(200)["checks"]["redis"] == "ok"


def test_not_ready_while_the_registry_cannot_be_read(rig: Rig) -> None:
    good = rig.registry.read_bytes()
    rig.registry.write_text("{ not json")
    try:
        assert rig.eventually(503)["checks"]["registry"] == "unreadable"
    finally:
        rig.registry.write_bytes(good)
    assert rig.eventually(200)["checks"]["registry"] == "ok"
