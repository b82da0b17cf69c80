"""A live gateway reading its upstream key from Key Vault through managed identity.

The real azure-identity and azure-keyvault-secrets code runs unchanged against a local
HTTPS stand-in of Key Vault and of the App Service managed identity endpoint.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.conftest import new_system
from tests.support.keyvault_standin import KeyVaultStandIn
from tests.support.processes import Service, start_gateway, start_simulator

CLIENT_ID = "7f8d2c1e-0000-4000-8000-00000000c1d0"
SECRET = "simulator-key"


@dataclass
class Rig:
    kv: KeyVaultStandIn
    gateway: Service
    simulator: Service
    key: str

    def chat(self) -> requests.Response:
        return requests.post(
            f"{self.gateway.url}/gateway/chat/completions/gpt-4o",
            headers={"api-key": self.key},
            json={"messages": [{"role": "user", "content": "hello"}]},
            timeout=30,
        )

    def rotate(self, value: str) -> None:
        self.kv.set_secret(SECRET, value)
        response = requests.post(
            f"{self.simulator.url}/_sim/config", json={"api_keys": [value]}, timeout=5
        )
        response.raise_for_status()

    def upstream_keys_seen(self) -> list[str]:
        records = requests.get(f"{self.simulator.url}/_sim/requests", timeout=5).json()["requests"]
        return [r["headers"].get("api-key") for r in records]


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    work = tmp_path_factory.mktemp("kv")
    with KeyVaultStandIn().in_thread() as kv:
        kv.set_secret(SECRET, "upstream-key-v1")
        simulator = start_simulator("upstream-key-v1", work / "simulator.log")
        env = {
            "TOLLGATE_REGISTRY": str(work / "systems.json"),
            "TOLLGATE_SIMULATOR_URL": simulator.url,
            "TOLLGATE_KEYVAULT_URL": kv.vault_url,
            "TOLLGATE_KEYVAULT_CA_FILE": kv.ca_file,
            "TOLLGATE_KEYVAULT_VERIFY_CHALLENGE_RESOURCE": "false",
            "AZURE_CLIENT_ID": CLIENT_ID,
            "TOLLGATE_SECRET_SIMULATOR_KEY": "",
            **kv.credential_env(),
        }
        key = new_system(env, "app", models="gpt-4o")
        gateway = start_gateway(env, Path(work / "gateway.log"))
        try:
            yield Rig(kv, gateway, simulator, key)
        finally:
            gateway.stop()
            simulator.stop()


def test_key_comes_from_key_vault_through_managed_identity_and_is_cached(rig: Rig) -> None:
    assert rig.chat().status_code == 200
    assert rig.chat().status_code == 200
    assert rig.kv.fetch_count(SECRET) == 1
    assert CLIENT_ID in rig.kv.token_client_ids


def test_rotation_refetches_once_and_succeeds(rig: Rig) -> None:
    before = rig.kv.fetch_count(SECRET)
    rig.rotate("upstream-key-v2")
    response = rig.chat()
    assert response.status_code == 200, response.text
    assert rig.kv.fetch_count(SECRET) == before + 1
    assert rig.upstream_keys_seen()[-2:] == ["upstream-key-v1", "upstream-key-v2"]


def test_concurrent_requests_after_rotation_share_one_refetch(rig: Rig) -> None:
    assert rig.chat().status_code == 200
    before = rig.kv.fetch_count(SECRET)
    rig.rotate("upstream-key-v3")
    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(lambda _: rig.chat().status_code, range(10)))
    assert statuses == [200] * 10
    assert rig.kv.fetch_count(SECRET) == before + 1


def test_upstream_keys_never_reach_the_log(rig: Rig) -> None:
    assert rig.chat().status_code == 200
    log = rig.gateway.log_text()
    assert "refused its key" in log
    for value in ("upstream-key-v1", "upstream-key-v2", "upstream-key-v3", rig.key):
        assert value not in log
