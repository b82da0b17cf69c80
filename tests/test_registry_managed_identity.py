"""The systems registry in Blob Storage through managed identity, as the gateway runs in Azure.

`TOLLGATE_REGISTRY=https://.../<container>/<blob>` with `IDENTITY_ENDPOINT`/`IDENTITY_HEADER` set
makes the CLI and the gateway use the real aio `ManagedIdentityCredential` (App Service protocol,
served by the Key Vault stand-in) and the real aio `BlobClient` against Azurite running over HTTPS
with `--oauth basic`. Nothing is faked in between: no connection string reaches the processes
under test, and they trust Azurite's self-signed certificate only through `SSL_CERT_FILE`, with
TLS verification on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError
from azure.identity.aio import ManagedIdentityCredential
from azure.storage.blob import BlobClient, BlobServiceClient, ContainerClient
from azure.storage.blob.aio import BlobClient as AsyncBlobClient

from shared.auth import keys
from shared.registry.store import BlobStore, store_from_settings
from shared.settings import Settings
from tests.conftest import create_key
from tests.support.azurite import SecureAzurite, azurite_oauth
from tests.support.keyvault_standin import (
    MSI_API_VERSION,
    STORAGE_RESOURCE,
    VAULT_RESOURCE,
    KeyVaultStandIn,
)
from tests.support.processes import Service, start_gateway, start_simulator, tollgate

CLIENT_ID = "3c9b7d5e-0000-4000-8000-0000000b10b5"
CONTAINER = "registry"
BLOB = "systems.json"
SIM_KEY = "upstream-secret-sim-key-managed-identity"
SYSTEM = "app"


@dataclass
class Rig:
    kv: KeyVaultStandIn
    storage: SecureAzurite
    simulator: Service
    env: dict[str, str]
    work: Path

    def blob(self) -> BlobClient:
        """The registry blob, read with the account key (inspection only)."""
        return BlobClient.from_connection_string(
            self.storage.connection_string,
            container_name=CONTAINER,
            blob_name=BLOB,
            connection_verify=str(self.storage.ca_file),
        )

    def cli(self, *args: str) -> str:
        result = tollgate(*args, env=self.env)
        assert result.returncode == 0, f"{args}: {result.stderr}\n{self.storage.log_text()[-4000:]}"
        return result.stdout


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    work = tmp_path_factory.mktemp("registry-mi")
    with KeyVaultStandIn().in_thread() as kv, azurite_oauth(work) as storage:
        with BlobServiceClient.from_connection_string(
            storage.connection_string, connection_verify=str(storage.ca_file)
        ) as service:
            service.create_container(CONTAINER)
        simulator = start_simulator(SIM_KEY, work / "simulator.log")
        env = {
            "TOLLGATE_REGISTRY": f"{storage.account_url}/{CONTAINER}/{BLOB}",
            "TOLLGATE_STORAGE_CONNECTION_STRING": "",  # managed identity only
            "TOLLGATE_KEYVAULT_URL": "",
            "AZURE_CLIENT_ID": CLIENT_ID,
            **kv.credential_env(),
            "SSL_CERT_FILE": str(storage.ca_file),
            "TOLLGATE_SIMULATOR_URL": simulator.url,
            "TOLLGATE_SECRET_SIMULATOR_KEY": SIM_KEY,
            "TOLLGATE_REGISTRY_REFRESH_SECONDS": "0.5",
        }
        try:
            yield Rig(kv, storage, simulator, env, work)
        finally:
            simulator.stop()


def chat(gateway: Service, key: str) -> requests.Response:
    return requests.post(
        f"{gateway.url}/gateway/chat/completions/gpt-4o",
        headers={"api-key": key},
        json={"messages": [{"role": "user", "content": "hello"}]},
        timeout=30,
    )


async def test_store_from_settings_is_an_async_blob_client_with_managed_identity(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in rig.kv.credential_env().items():
        monkeypatch.setenv(name, value)
    store = store_from_settings(Settings.from_env(rig.env))
    try:
        assert isinstance(store, BlobStore)
        assert isinstance(store.blob, AsyncBlobClient)
        assert store.blob.url == f"{rig.storage.account_url}/{CONTAINER}/{BLOB}"
        assert isinstance(store.blob.credential, ManagedIdentityCredential)
    finally:
        await store.aclose()


def test_cli_writes_the_registry_blob_through_managed_identity(rig: Rig) -> None:
    rig.cli("systems", "create", SYSTEM, "--models", "gpt-4o")
    key = create_key(rig.env, SYSTEM)
    with rig.blob() as blob:
        stored = blob.download_blob().readall().decode()
    assert key not in stored
    record = json.loads(stored)["systems"][SYSTEM]["keys"][keys.key_id_of(key)]
    assert record["hash"] == keys.hash_key(key)


def test_gateway_reads_the_blob_and_sees_a_revocation(rig: Rig) -> None:
    rig.cli("systems", "create", "live", "--models", "gpt-4o")
    key = create_key(rig.env, "live")
    key_id = keys.key_id_of(key)
    assert key_id is not None
    gateway = start_gateway(rig.env, rig.work / "gateway.log")
    try:
        response = chat(gateway, key)
        assert response.status_code == 200, f"{response.text}\n{gateway.log_text()}"
        rig.cli("keys", "revoke", key_id)
        statuses: list[int] = []
        deadline = time.monotonic() + 10
        for _ in range(50):  # refresh every 0.5 s: a few polls are enough
            statuses.append(chat(gateway, key).status_code)
            if statuses[-1] == 401 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert statuses[-1] == 401, f"{statuses}\n{gateway.log_text()}"
        assert set(statuses) <= {200, 401}
    finally:
        gateway.stop()
    assert key not in gateway.log_text()


def test_identity_endpoint_was_asked_for_storage_as_the_configured_identity(rig: Rig) -> None:
    before = len(rig.kv.token_requests)
    rig.cli("systems", "list")  # a fresh process: no cached token
    asked = [(r.get("resource"), r.get("client_id")) for r in rig.kv.token_requests[before:]]
    assert asked == [(STORAGE_RESOURCE, CLIENT_ID)]


class _Static:
    """A sync TokenCredential returning one fixed token."""

    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)


def _token_for(kv: KeyVaultStandIn, resource: str) -> str:
    response = requests.get(
        kv.identity_endpoint,
        params={"api-version": MSI_API_VERSION, "resource": resource, "client_id": CLIENT_ID},
        headers={"X-IDENTITY-HEADER": kv.identity_header},
        timeout=5,
    )
    response.raise_for_status()
    assert response.json()["resource"] == resource
    return str(response.json()["access_token"])


@pytest.mark.parametrize(
    ("resource", "accepted"),
    [
        (STORAGE_RESOURCE, True),
        ("https://management.azure.com", False),  # a JWT, for another audience
        (VAULT_RESOURCE, False),  # not a JWT
    ],
)
def test_azurite_checks_the_token(rig: Rig, resource: str, accepted: bool) -> None:
    """Control: Azurite accepts the stand-in's storage token and refuses the others."""
    url = f"{rig.storage.account_url}/{CONTAINER}"
    credential = _Static(_token_for(rig.kv, resource))
    with ContainerClient.from_container_url(
        url, credential=credential, connection_verify=str(rig.storage.ca_file), retry_total=0
    ) as container:
        if accepted:
            assert container.get_container_properties().name == CONTAINER
        else:
            with pytest.raises(ClientAuthenticationError):
                container.get_container_properties()


async def test_azurite_certificate_is_not_trusted_by_default(rig: Rig) -> None:
    """Control: verification is on, so SSL_CERT_FILE is what lets the processes connect."""
    url = f"{rig.storage.account_url}/{CONTAINER}/{BLOB}"
    async with AsyncBlobClient.from_blob_url(url, retry_total=0) as blob:
        with pytest.raises(ServiceRequestError, match="CERTIFICATE_VERIFY_FAILED"):
            await blob.get_blob_properties()
