"""The systems registry: keys, documents, stores (file and Azurite blob), refresh, CLI."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob.aio import BlobServiceClient

from shared.auth import keys
from shared.errors import ConfigError
from shared.registry import admin
from shared.registry.cache import RegistryCache
from shared.registry.store import (
    BlobStore,
    ConcurrentEdit,
    FileStore,
    RegistryStore,
    store_from_settings,
)
from shared.registry.systems import Registry, RegistryError
from shared.settings import Settings
from tests.support.processes import tollgate


def test_generated_keys_are_random_and_only_their_hash_is_kept() -> None:
    a, b = keys.generate_key(), keys.generate_key()
    assert a.key != b.key and a.key_id != b.key_id
    assert len(a.key) > 50 and a.key.startswith("tg_")
    assert a.hash == keys.hash_key(a.key) and a.key not in a.hash
    assert keys.matches(a.key, a.hash) and not keys.matches(b.key, a.hash)
    assert keys.key_id_of(a.key) == a.key_id
    assert keys.key_id_of("H7UXkDQiYX6+frijH+aGDA==") is None


def _document_with_key() -> tuple[dict[str, object], str]:
    document: dict[str, object] = {"version": 1, "systems": {}}
    admin.create_system("0003R3", "Claims", ["gpt-4o"])(document)
    new, change = admin.add_key("0003R3", "app")
    change(document)
    return document, new.key


def test_authenticate_and_revoke() -> None:
    document, key = _document_with_key()
    caller = Registry.parse(document).authenticate(key)
    assert caller is not None and caller.system.id == "0003R3"
    assert caller.system.allows("gpt-4o") and not caller.system.allows("gpt-4-turbo")
    other = key[:-1] + ("B" if key.endswith("A") else "A")  # one character off, never the key
    assert Registry.parse(document).authenticate(other) is None
    revoked = admin.revoke_key(caller.key_id)(document)
    assert revoked.system_id == "0003R3" and not revoked.already
    assert Registry.parse(document).authenticate(key) is None


def test_disabled_system_cannot_authenticate() -> None:
    document, key = _document_with_key()
    admin.update_system("0003R3", disabled=True)(document)
    assert Registry.parse(document).authenticate(key) is None


def test_update_models() -> None:
    document, _ = _document_with_key()
    system = admin.update_system("0003R3", add_models=["gpt-4-turbo"], remove_models=["gpt-4o"])(
        document
    )
    assert system["models"] == ["gpt-4-turbo"]


@pytest.mark.parametrize("bad", ["", "a/b", "../x", "x" * 65, "a b"])
def test_invalid_system_ids(bad: str) -> None:
    with pytest.raises(RegistryError):
        admin.create_system(bad, "", [])


def test_malformed_documents_are_rejected() -> None:
    bad: Any
    for bad in ([], {"systems": []}, {"systems": {"a": {"keys": {"k": {}}}}}):
        with pytest.raises(RegistryError):
            Registry.parse(bad)


async def _exercise_store(store: RegistryStore) -> None:
    first = await store.read(None)
    assert first is not None and first.data is None
    etag = await store.write(b'{"systems": {}}', None)
    with pytest.raises(ConcurrentEdit):
        await store.write(b'{"systems": {"x": {}}}', None)  # create, but it exists
    assert await store.read(etag) is None  # unchanged since etag
    newer = await store.write(b'{"systems": {"y": {}}}', etag)
    with pytest.raises(ConcurrentEdit):
        await store.write(b"{}", etag)  # stale etag
    got = await store.read(etag)
    assert (
        got is not None
        and got.etag == newer
        and json.loads(got.data or b"") == {"systems": {"y": {}}}
    )


async def _concurrent_edits(store: RegistryStore) -> None:
    names = [f"sys{i}" for i in range(8)]
    await asyncio.gather(*(admin.edit(store, admin.create_system(n, "", [])) for n in names))
    document, _ = await admin.read_document(store)
    assert sorted(document["systems"]) == names


async def test_file_store(tmp_path: Path) -> None:
    await _exercise_store(FileStore(tmp_path / "a" / "systems.json"))
    await _concurrent_edits(FileStore(tmp_path / "b.json"))


@pytest.fixture
async def blob_settings(
    azurite_connection: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Settings]:
    # Edits are audited: beside a registry file, but a blob's go where the setting says.
    monkeypatch.setenv("TOLLGATE_AUDIT_LOG", str(tmp_path / "audit"))
    async with BlobServiceClient.from_connection_string(azurite_connection) as service:
        container = f"registry{uuid.uuid4().hex[:12]}"
        await service.create_container(container)
        env = {
            "TOLLGATE_REGISTRY": f"{container}/systems.json",
            "TOLLGATE_STORAGE_CONNECTION_STRING": azurite_connection,
        }
        yield Settings.from_env(env)


def test_a_malformed_connection_string_is_a_config_error_that_never_quotes_it() -> None:
    env = {
        "TOLLGATE_REGISTRY": "registry/systems.json",
        "TOLLGATE_STORAGE_CONNECTION_STRING": "AccountKey=canary-not-a-key",
    }
    with pytest.raises(ConfigError) as caught:
        store_from_settings(Settings.from_env(env))
    assert "TOLLGATE_STORAGE_CONNECTION_STRING" in str(caught.value)
    assert "canary" not in str(caught.value)


async def test_blob_store_on_azurite(blob_settings: Settings) -> None:
    store = store_from_settings(blob_settings)
    assert isinstance(store, BlobStore)
    try:
        await _exercise_store(store)
    finally:
        await store.aclose()


async def test_blob_store_concurrent_edits(blob_settings: Settings) -> None:
    store = store_from_settings(blob_settings)
    try:
        await _concurrent_edits(store)
    finally:
        await store.aclose()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingStore(FileStore):
    reads = 0

    async def read(self, known_etag: str | None = None):  # type: ignore[no-untyped-def]
        self.reads += 1
        return await super().read(known_etag)


async def test_cache_refreshes_in_background_then_blocks_when_idle(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "systems.json")
    clock = Clock()
    cache = RegistryCache(store, refresh_seconds=10, clock=clock)
    assert (await cache.current()).systems == {}
    assert store.reads == 1
    await admin.edit(store, admin.create_system("a", "", []))
    clock.now += 5
    assert (await cache.current()).systems == {}  # fresh enough: no read
    reads = store.reads
    clock.now += 6  # stale: served as is while a background refresh runs
    await cache.current()
    await asyncio.sleep(0.05)
    assert store.reads == reads + 1
    assert set((await cache.current()).systems) == {"a"}
    await admin.edit(store, admin.create_system("b", "", []))
    clock.now += 31  # idle past 3 intervals: refreshed before answering
    assert set((await cache.current()).systems) == {"a", "b"}


async def test_cache_keeps_last_good_snapshot_on_a_broken_document(tmp_path: Path) -> None:
    path = tmp_path / "systems.json"
    store = FileStore(path)
    clock = Clock()
    cache = RegistryCache(store, refresh_seconds=1, clock=clock)
    await admin.edit(store, admin.create_system("a", "", []))
    assert set((await cache.current()).systems) == {"a"}
    path.write_text("{not json")
    clock.now += 5
    assert set((await cache.current()).systems) == {"a"}


def test_cli_keys_create_prints_only_the_key(tmp_path: Path) -> None:
    env = {"TOLLGATE_REGISTRY": str(tmp_path / "systems.json")}
    assert tollgate("systems", "create", "0003R3", "--models", "gpt-4o", env=env).returncode == 0
    created = tollgate("keys", "create", "--system", "0003R3", "--label", "claims", env=env)
    assert created.returncode == 0
    key = created.stdout.strip()
    assert created.stdout == key + "\n" and key.startswith("tg_")
    stored = (tmp_path / "systems.json").read_text()
    assert key not in stored and keys.hash_key(key) in stored
    listed = tollgate("keys", "list", "--system", "0003R3", env=env)
    assert str(keys.key_id_of(key)) in listed.stdout and key not in listed.stdout
    shown = tollgate("systems", "show", "0003R3", "--json", env=env)
    assert "sha256:" not in shown.stdout and json.loads(shown.stdout)["models"] == ["gpt-4o"]
    updated = tollgate(
        "systems", "update", "0003R3", "--add-model", "gpt-4-turbo", "--disable", "--json", env=env
    )
    assert json.loads(updated.stdout)["disabled"] is True
    systems = json.loads(tollgate("systems", "list", "--json", env=env).stdout)
    assert systems[0] | {"created": None} == {
        "id": "0003R3",
        "name": "",
        "disabled": True,
        "models": ["gpt-4-turbo", "gpt-4o"],
        "created": None,
        "active_keys": 1,
    }
    missing = tollgate("keys", "create", "--system", "nope", env=env)
    assert missing.returncode == 2 and "no system 'nope'" in missing.stderr and missing.stdout == ""
