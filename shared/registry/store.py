"""Where the registry document lives: a local file, or a blob every instance can read."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from shared.settings import Settings
from shared.storage.location import Container, parse_location

if TYPE_CHECKING:
    from azure.storage.blob.aio import BlobClient


class ConcurrentEdit(Exception):
    """Someone else changed the registry since it was read; read again and retry."""


@dataclass(frozen=True)
class StoredDocument:
    data: bytes | None  # None: no document yet
    etag: str | None


class RegistryStore(Protocol):
    def describe(self) -> str:
        """Where it is, for messages: a path, or a container and blob name."""
        ...

    async def read(self, known_etag: str | None = None) -> StoredDocument | None:
        """The document, or None when it still has `known_etag`."""
        ...

    async def write(self, data: bytes, etag: str | None) -> str:
        """Replace the document read with `etag` (None: create it); returns the new etag."""
        ...

    async def aclose(self) -> None: ...


class FileStore:
    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)

    def describe(self) -> str:
        return str(self.path)

    async def read(self, known_etag: str | None = None) -> StoredDocument | None:
        return await asyncio.to_thread(self._read, known_etag)

    async def write(self, data: bytes, etag: str | None) -> str:
        return await asyncio.to_thread(self._write, data, etag)

    async def aclose(self) -> None:
        return None

    def _etag(self) -> str | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return f"{st.st_mtime_ns}-{st.st_size}-{st.st_ino}"

    def _read(self, known_etag: str | None) -> StoredDocument | None:
        etag = self._etag()
        if etag is not None and etag == known_etag:
            return None
        if etag is None:
            return StoredDocument(data=None, etag=None)
        return StoredDocument(data=self.path.read_bytes(), etag=etag)

    def _write(self, data: bytes, etag: str | None) -> str:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(f"{self.path}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self._etag() != etag:
                raise ConcurrentEdit(str(self.path))
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".systems-")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                os.chmod(tmp, 0o600)
                os.replace(tmp, self.path)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
            new = self._etag()
            assert new is not None
            return new


class BlobStore:
    # azure-core is imported where it is used: a command on a local registry has no need of it.

    def __init__(self, container: Container):
        self._container = container
        self.blob: BlobClient = container.client.get_blob_client(container.location.path)

    def describe(self) -> str:
        return f"{self.blob.container_name}/{self.blob.blob_name}"

    async def read(self, known_etag: str | None = None) -> StoredDocument | None:
        from azure.core import MatchConditions
        from azure.core.exceptions import (
            ResourceModifiedError,
            ResourceNotFoundError,
            ResourceNotModifiedError,
        )

        conditions: dict[str, Any] = {}
        if known_etag:
            conditions = {"etag": known_etag, "match_condition": MatchConditions.IfModified}
        try:
            stream = await self.blob.download_blob(**conditions)
            data = await stream.readall()
        except (ResourceNotModifiedError, ResourceModifiedError):
            return None  # Azure answers 304 here; Azurite answers 412
        except ResourceNotFoundError:
            return StoredDocument(data=None, etag=None)
        return StoredDocument(data=data, etag=stream.properties.etag)

    async def write(self, data: bytes, etag: str | None) -> str:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError

        try:
            if etag is None:
                result = await self.blob.upload_blob(data, overwrite=False)
            else:
                result = await self.blob.upload_blob(
                    data, overwrite=True, etag=etag, match_condition=MatchConditions.IfNotModified
                )
        except (ResourceExistsError, ResourceModifiedError):
            raise ConcurrentEdit(self.describe()) from None
        return str(result["etag"])

    async def aclose(self) -> None:
        await self._container.aclose()  # the blob's client shares the container's


def store_from_settings(settings: Settings) -> FileStore | BlobStore:
    location = parse_location(settings.registry, settings.storage_connection_string)
    if isinstance(location, Path):
        return FileStore(location)
    return BlobStore(Container(location, settings.azure_client_id))
