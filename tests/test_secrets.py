"""Secret providers against the real Key Vault SDK and managed identity credential, over HTTPS."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from azure.identity.aio import DefaultAzureCredential, ManagedIdentityCredential

from shared.auth.secret_cache import STALE_RETRY_SECONDS, CachedSecrets
from shared.auth.secrets import (
    EnvSecretProvider,
    KeyVaultSecretProvider,
    SecretNotFound,
    SecretProvider,
    SecretProviderError,
    build_credential,
    build_secret_provider,
)
from tests.support import FakeClock, GatedSecretProvider
from tests.support.keyvault_standin import VAULT_RESOURCE, KeyVaultStandIn

CLIENT_ID = "11111111-2222-3333-4444-555555555555"
NAME = "aoai-japaneast-key"
OLD, NEW = "sk-old-0123456789", "sk-new-9876543210"
REPO_ROOT = Path(__file__).resolve().parent.parent
AZURE_MARKERS = ("IDENTITY_ENDPOINT", "MSI_ENDPOINT", "WEBSITE_INSTANCE_ID")


def assert_no_secret(error: BaseException, *values: str) -> None:
    for value in values:
        assert value not in str(error) and value not in repr(error)


@pytest.fixture
async def kv(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[KeyVaultStandIn]:
    async with KeyVaultStandIn() as standin:
        for var, value in standin.credential_env().items():
            monkeypatch.setenv(var, value)
        monkeypatch.delenv("IDENTITY_SERVER_THUMBPRINT", raising=False)  # would mean Service Fabric
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        yield standin


@pytest.fixture
async def provider(kv: KeyVaultStandIn) -> AsyncIterator[SecretProvider]:
    # verify_challenge_resource=False: else the SDK wants the host to end in ".vault.azure.net".
    built = build_secret_provider(
        kv.vault_url, CLIENT_ID, kv.ca_file, verify_challenge_resource=False
    )
    yield built
    await built.aclose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cache(provider: SecretProvider, clock: FakeClock) -> CachedSecrets:
    return CachedSecrets(provider, ttl_seconds=60, clock=clock)


# -- KeyVaultSecretProvider -------------------------------------------------------------------


async def test_key_vault_provider_reads_secrets_as_the_configured_identity(kv, provider):
    kv.set_secret(NAME, OLD)
    assert isinstance(provider, KeyVaultSecretProvider)
    assert await provider.get(NAME) == OLD
    with pytest.raises(SecretNotFound, match=r"'missing' in https://127\.0\.0\.1"):
        await provider.get("missing")
    assert (kv.fetch_count(NAME), kv.fetch_count("missing")) == (1, 1)
    # one token, for Key Vault, as the user-assigned identity; reused for the second call
    assert [(r["resource"], r.get("client_id")) for r in kv.token_requests] == [
        (VAULT_RESOURCE, CLIENT_ID)
    ]


async def test_key_vault_rejected_token_is_provider_error_without_value(kv, provider):
    kv.set_secret(NAME, OLD)
    assert await provider.get(NAME) == OLD
    kv.revoke_tokens()  # the credential's cached token is now refused with 401
    await assert_provider_error(provider, "HTTP 401", close=False)


async def assert_provider_error(provider: SecretProvider, match: str, close: bool = True) -> None:
    try:
        with pytest.raises(SecretProviderError, match=match) as raised:
            await provider.get(NAME)
        assert_no_secret(raised.value, OLD)
    finally:
        if close:
            await provider.aclose()


async def test_challenge_resource_check_rejects_non_vault_host(kv):
    kv.set_secret(NAME, OLD)
    strict = build_secret_provider(kv.vault_url, CLIENT_ID, kv.ca_file)
    await assert_provider_error(strict, "does not match the requested domain")


async def test_tls_verification_stays_on_without_the_stand_in_ca(kv):
    kv.set_secret(NAME, OLD)
    untrusting = KeyVaultSecretProvider(
        kv.vault_url, ManagedIdentityCredential(), verify_challenge_resource=False, retry_total=0
    )
    await assert_provider_error(untrusting, "CERTIFICATE_VERIFY_FAILED")
    assert kv.fetch_count(NAME) == 0


async def test_unreachable_vault_is_provider_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"https://127.0.0.1:{sock.getsockname()[1]}"
    unreachable = KeyVaultSecretProvider(url, ManagedIdentityCredential(), retry_total=0)
    await assert_provider_error(unreachable, "unreachable")


CHILD = """
import asyncio, sys
from shared.auth.secrets import build_secret_provider
async def main():
    provider = build_secret_provider(*sys.argv[1:4], verify_challenge_resource=False)
    print(len(await provider.get(sys.argv[4])))
    await provider.aclose()
asyncio.run(main())
"""


def test_production_path_from_a_blocking_subprocess_with_threaded_stand_in():
    with KeyVaultStandIn().in_thread() as kv:
        kv.set_secret(NAME, OLD)
        env = {**os.environ, **kv.credential_env(), "PYTHONPATH": str(REPO_ROOT)}
        env.pop("IDENTITY_SERVER_THUMBPRINT", None)
        args = [sys.executable, "-c", CHILD, kv.vault_url, CLIENT_ID, kv.ca_file, NAME]
        child = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
        assert child.returncode == 0, child.stderr
        assert child.stdout.strip() == str(len(OLD))  # the value itself never leaves the child
        assert kv.fetch_count(NAME) == 1 and kv.token_client_ids == [CLIENT_ID]


# -- CachedSecrets over the stand-in ------------------------------------------------------------


async def test_cache_serves_within_ttl_and_refetches_after(kv, cache, clock):
    kv.set_secret(NAME, OLD)
    assert await cache.get(NAME) == OLD
    clock.now += 59
    assert await cache.get(NAME) == OLD
    assert kv.fetch_count(NAME) == 1
    kv.set_secret(NAME, NEW)
    clock.now += 2
    assert await cache.get(NAME) == NEW
    assert kv.fetch_count(NAME) == 2


async def test_concurrent_misses_make_one_fetch(kv, cache):
    kv.set_secret(NAME, OLD)
    values = await asyncio.gather(*(cache.get(NAME) for _ in range(20)))
    assert values == [OLD] * 20
    assert kv.fetch_count(NAME) == 1


async def test_refresh_after_rotation_fetches_once_then_superseded_stale_is_free(kv, cache):
    kv.set_secret(NAME, OLD)
    assert await cache.get(NAME) == OLD
    kv.set_secret(NAME, NEW)
    assert await cache.refresh(NAME, OLD) == NEW
    assert kv.fetch_count(NAME) == 2
    # Another request that also saw OLD rejected: the cache already holds NEW.
    assert await cache.refresh(NAME, OLD) == NEW
    assert await cache.get(NAME) == NEW
    assert kv.fetch_count(NAME) == 2


async def test_concurrent_refreshes_coalesce_into_one_fetch(kv, cache):
    kv.set_secret(NAME, OLD)
    await cache.get(NAME)
    kv.set_secret(NAME, NEW)
    values = await asyncio.gather(*(cache.refresh(NAME, OLD) for _ in range(10)))
    assert values == [NEW] * 10
    assert kv.fetch_count(NAME) == 2


async def test_refreshes_before_the_vault_rotates_still_fetch_once(kv, cache):
    kv.set_secret(NAME, OLD)
    await cache.get(NAME)
    values = await asyncio.gather(*(cache.refresh(NAME, OLD) for _ in range(10)))
    assert values == [OLD] * 10  # callers give up on this value; no retry storm on the vault
    assert kv.fetch_count(NAME) == 2


async def test_cache_errors_and_repr_hold_no_secret_values(kv, cache):
    kv.set_secret(NAME, OLD)
    await cache.get(NAME)
    kv.set_secret(NAME, NEW)
    kv.revoke_tokens()
    with pytest.raises(SecretProviderError) as raised:
        await cache.refresh(NAME, OLD)
    assert_no_secret(raised.value, OLD, NEW)
    assert NAME in repr(cache) and OLD not in repr(cache)


# -- CachedSecrets races, pinned down with a gated provider --------------------------------


async def test_refresh_does_not_trust_a_ttl_fetch_that_predates_rotation(clock):
    fake = GatedSecretProvider(OLD)
    fake.gate.set()
    cache = CachedSecrets(fake, ttl_seconds=60, clock=clock)
    await cache.get(NAME)
    fake.gate.clear()
    clock.now += 61
    ttl_get = asyncio.ensure_future(cache.get(NAME))  # starts a fetch that will still see OLD
    await fake.until_called(2)
    fake.value = NEW
    refreshed = asyncio.ensure_future(cache.refresh(NAME, OLD))
    await asyncio.sleep(0)
    fake.gate.set()
    assert await ttl_get == OLD
    assert await refreshed == NEW
    assert fake.calls == 3


async def test_failed_fetch_reaches_every_waiter_and_is_not_cached(clock):
    fake = GatedSecretProvider(OLD)
    fake.error = SecretProviderError("vault down")
    cache = CachedSecrets(fake, ttl_seconds=60, clock=clock)
    waiters = [asyncio.ensure_future(cache.get(NAME)) for _ in range(5)]
    await fake.until_called(1)
    fake.gate.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, SecretProviderError) for r in results) and fake.calls == 1
    fake.error = None
    assert await cache.get(NAME) == OLD and fake.calls == 2


async def test_routine_reread_failure_keeps_serving_the_cached_value(clock):
    fake = GatedSecretProvider(OLD)
    fake.gate.set()
    cache = CachedSecrets(fake, ttl_seconds=60, clock=clock)
    assert await cache.get(NAME) == OLD
    fake.error = SecretProviderError("vault down")
    clock.now += 61
    assert await cache.get(NAME) == OLD and fake.calls == 2
    clock.now += STALE_RETRY_SECONDS - 1
    assert await cache.get(NAME) == OLD and fake.calls == 2  # no retry storm on the vault
    clock.now += 2
    fake.error, fake.value = None, NEW
    assert await cache.get(NAME) == NEW and fake.calls == 3


async def test_forced_refresh_failure_is_not_hidden(clock):
    fake = GatedSecretProvider(OLD)
    fake.gate.set()
    cache = CachedSecrets(fake, ttl_seconds=60, clock=clock)
    assert await cache.get(NAME) == OLD
    fake.error = SecretProviderError("vault down")
    with pytest.raises(SecretProviderError):
        await cache.refresh(NAME, OLD)


async def test_cancelled_waiter_does_not_cancel_the_shared_fetch(clock):
    fake = GatedSecretProvider(OLD)
    cache = CachedSecrets(fake, ttl_seconds=60, clock=clock)
    first, second = (asyncio.ensure_future(cache.get(NAME)) for _ in range(2))
    await fake.until_called(1)
    first.cancel()
    fake.gate.set()
    assert await second == OLD and fake.calls == 1


# -- EnvSecretProvider and the builders ----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "variable"),
    [
        (NAME, "TOLLGATE_SECRET_AOAI_JAPANEAST_KEY"),
        ("openai.org/key v2", "TOLLGATE_SECRET_OPENAI_ORG_KEY_V2"),
    ],
)
def test_env_variable_name_mapping(name, variable):
    assert EnvSecretProvider.env_var_name(name) == variable


async def test_env_provider_reads_environment_at_call_time(monkeypatch):
    provider = EnvSecretProvider()
    monkeypatch.setenv("TOLLGATE_SECRET_AOAI_JAPANEAST_KEY", OLD)
    assert await provider.get(NAME) == OLD
    monkeypatch.setenv("TOLLGATE_SECRET_AOAI_JAPANEAST_KEY", NEW)
    assert await provider.get(NAME) == NEW


async def test_env_provider_missing_or_empty_is_not_found():
    provider = EnvSecretProvider({"TOLLGATE_SECRET_EMPTY": "", "TOLLGATE_SECRET_OTHER": OLD})
    assert await provider.get("other") == OLD
    for name in ("empty", "absent"):
        with pytest.raises(SecretNotFound, match=f"TOLLGATE_SECRET_{name.upper()}") as raised:
            await provider.get(name)
        assert_no_secret(raised.value, OLD)


async def test_build_secret_provider_without_vault_url_uses_env(monkeypatch):
    monkeypatch.setenv("TOLLGATE_SECRET_X", OLD)
    for vault_url in (None, ""):
        provider = build_secret_provider(vault_url, CLIENT_ID)
        assert isinstance(provider, EnvSecretProvider) and await provider.get("x") == OLD


# MSI_ENDPOINT alone means Cloud Shell, whose credential refuses a client_id; with MSI_SECRET it is
# Azure ML.
@pytest.mark.parametrize(
    "markers",
    [(), ("IDENTITY_ENDPOINT",), ("MSI_ENDPOINT", "MSI_SECRET"), ("WEBSITE_INSTANCE_ID",)],
)
async def test_build_credential_picks_managed_identity_only_in_azure(monkeypatch, markers):
    for var in (*AZURE_MARKERS, "IDENTITY_HEADER", "MSI_SECRET"):
        monkeypatch.delenv(var, raising=False)
    for marker in markers:
        monkeypatch.setenv(marker, "http://127.0.0.1:9/marker")
    credential = build_credential(CLIENT_ID)
    expected = ManagedIdentityCredential if markers else DefaultAzureCredential
    assert type(credential) is expected
    await credential.close()
