"""Appending usage records to hourly JSON Lines files: a local folder or append blobs.

Exactly once: a blob append names the offset it expects (`appendpos`); a retry of an append
that did land fails that condition, and the blob's length then shows it landed.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any, Protocol

from shared.storage.location import Container, parse_location

MAX_APPEND = 4 * 1024 * 1024  # Azure's limit for one append block


class RecordWriter(Protocol):
    def describe(self) -> str: ...

    async def append(self, name: str, data: bytes) -> None:
        """Append `data` to `name` (created if missing); all of it, once, or raise."""
        ...

    async def aclose(self) -> None: ...


class FolderWriter:
    def __init__(self, root: Path):
        self.root = root

    def describe(self) -> str:
        return str(self.root)

    async def append(self, name: str, data: bytes) -> None:
        await asyncio.to_thread(self._append, self.root / name, data)

    @staticmethod
    def _append(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    async def aclose(self) -> None:
        return None


class AppendBlobWriter:
    def __init__(self, container: Container):
        self._container = container
        self._sizes: dict[str, int] = {}  # blob -> its length as this writer knows it

    def describe(self) -> str:
        return self._container.describe()

    async def append(self, name: str, data: bytes) -> None:
        from azure.core.exceptions import HttpResponseError

        blob = self._container.client.get_blob_client(self._container.prefix + name)
        if name not in self._sizes:
            self._sizes[name] = await self._open(blob)
        for start in range(0, len(data), MAX_APPEND):
            chunk = data[start : start + MAX_APPEND]
            expected = self._sizes[name]
            try:
                await blob.append_block(chunk, appendpos_condition=expected)
            except HttpResponseError as exc:
                if getattr(exc, "error_code", None) != "AppendPositionConditionNotMet":
                    raise
                actual = (await blob.get_blob_properties()).size
                if actual != expected + len(chunk):  # not our earlier try: resynchronise
                    self._sizes[name] = actual
                    raise
            self._sizes[name] = expected + len(chunk)

    async def _open(self, blob: Any) -> int:
        """The blob's length, creating it (and its container) when missing. Each blob has one
        writer (the instance id is in its name), so nothing races the creation."""
        from azure.core.exceptions import ResourceNotFoundError

        await self._container.create()
        try:
            return int((await blob.get_blob_properties()).size)
        except ResourceNotFoundError:
            await blob.create_append_blob()
            return 0

    async def aclose(self) -> None:
        await self._container.aclose()


def record_writer(
    location: str, connection_string: str | None, client_id: str | None
) -> FolderWriter | AppendBlobWriter:
    parsed = parse_location(location, connection_string)
    if isinstance(parsed, Path):
        return FolderWriter(parsed)
    return AppendBlobWriter(Container(parsed, client_id, retry_total=0))
