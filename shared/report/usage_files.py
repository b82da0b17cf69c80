"""Where usage records are read from: JSON Lines under
`<location>/<yyyy>/<mm>/<dd>/<hh>/<instance id>.jsonl` in a folder or a container, one file per
gateway instance and UTC hour of the record's `time`, appended to during that hour.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import IO, Protocol

from shared.storage.location import Container, parse_location

CHUNK_BYTES = 1024 * 1024


def days(since: date, until: date) -> list[date]:
    return [since + timedelta(days=n) for n in range((until - since).days + 1)]


class RecordFiles(Protocol):
    """Usage record files: a folder, given files and folders, or a container."""

    def describe(self) -> str: ...

    async def names(self) -> list[str]: ...

    def chunks(self, name: str) -> AsyncGenerator[bytes, None]: ...

    async def aclose(self) -> None: ...


class LocalFiles:
    """Files, and every *.jsonl under folders; missing_ok: a missing path holds no files."""

    def __init__(self, paths: Sequence[Path], description: str, *, missing_ok: bool = False):
        self._paths = paths
        self._description = description
        self._missing_ok = missing_ok

    def describe(self) -> str:
        return self._description

    async def names(self) -> list[str]:
        return await asyncio.to_thread(self._names)

    def _names(self) -> list[str]:
        found: list[str] = []
        for path in self._paths:
            if path.is_file():
                found.append(str(path))
            elif path.is_dir():
                found += sorted(str(p) for p in path.rglob("*.jsonl") if p.is_file())
            elif not self._missing_ok:
                raise FileNotFoundError(f"{path}: no such file or folder")
        return found

    async def chunks(self, name: str) -> AsyncGenerator[bytes, None]:
        handle = await asyncio.to_thread(_open_binary, name)
        try:
            while chunk := await asyncio.to_thread(handle.read, CHUNK_BYTES):
                yield chunk
        finally:
            handle.close()

    async def aclose(self) -> None:
        return None


def _open_binary(name: str) -> IO[bytes]:
    return open(name, "rb")  # closed by the generator that reads it


class ContainerFiles:
    """The blobs of since..until under a container's prefix, read up to their listed size."""

    def __init__(self, container: Container, since: date, until: date):
        self._container = container
        self._since, self._until = since, until
        self._sizes: dict[str, int] = {}

    def describe(self) -> str:
        return self._container.describe()

    async def names(self) -> list[str]:
        for day in days(self._since, self._until):
            prefix = f"{self._container.prefix}{day:%Y/%m/%d}/"
            async for blob in self._container.client.list_blobs(name_starts_with=prefix):
                if blob.name.endswith(".jsonl"):
                    self._sizes[blob.name] = int(blob.size or 0)
        return sorted(self._sizes)

    async def chunks(self, name: str) -> AsyncGenerator[bytes, None]:
        # Ranges up to the listed size, each its own request: a blob appended to meanwhile
        # would fail one long download (its ETag changes), and what was listed never changes.
        size = self._sizes[name]
        for offset in range(0, size, CHUNK_BYTES):
            length = min(CHUNK_BYTES, size - offset)
            client = self._container.client
            download = await client.download_blob(name, offset=offset, length=length)
            yield await download.readall()

    async def aclose(self) -> None:
        await self._container.aclose()


def location_files(
    location: str,
    connection_string: str | None,
    client_id: str | None,
    since: date,
    until: date,
) -> LocalFiles | ContainerFiles:
    """The record files of since..until at a location (ValueError for a bad location)."""
    parsed = parse_location(location, connection_string)
    if isinstance(parsed, Path):
        folders = [parsed / f"{day:%Y/%m/%d}" for day in days(since, until)]
        return LocalFiles(folders, str(parsed), missing_ok=True)
    return ContainerFiles(Container(parsed, client_id, retry_total=3), since, until)
