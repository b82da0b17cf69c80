"""Latency CSVs, one per run, under `<yyyy>/<mm>/<dd>/<run id>.csv`: a folder or a container."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Protocol

from shared.storage.location import Container, parse_location


def run_blob_name(day: date, run_id: str) -> str:
    return f"{day:%Y/%m/%d}/{run_id}.csv"


def day_prefixes(since: date, until: date) -> list[str]:
    days = (until - since).days
    return [f"{since + timedelta(days=n):%Y/%m/%d}/" for n in range(max(days, -1) + 1)]


class ResultsStore(Protocol):
    def describe(self) -> str: ...

    async def put(self, name: str, text: str) -> None: ...

    async def names(self, since: date, until: date) -> list[str]: ...

    async def get(self, name: str) -> str: ...

    async def aclose(self) -> None: ...


class FolderResults:
    def __init__(self, root: Path, suffix: str = ".csv"):
        self.root = root
        self.suffix = suffix

    def describe(self) -> str:
        return str(self.root)

    async def put(self, name: str, text: str) -> None:
        await asyncio.to_thread(self._put, name, text)

    def _put(self, name: str, text: str) -> None:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)

    async def names(self, since: date, until: date) -> list[str]:
        return await asyncio.to_thread(self._names, since, until)

    def _names(self, since: date, until: date) -> list[str]:
        found: list[str] = []
        for prefix in day_prefixes(since, until):
            folder = self.root / prefix
            if folder.is_dir():
                found += sorted(f"{prefix}{p.name}" for p in folder.glob(f"*{self.suffix}"))
        return found

    async def get(self, name: str) -> str:
        return await asyncio.to_thread((self.root / name).read_text, encoding="utf-8")

    async def aclose(self) -> None:
        return None


class ContainerResults:
    def __init__(self, container: Container, suffix: str = ".csv"):
        self.suffix = suffix
        self._container = container

    def describe(self) -> str:
        return self._container.describe()

    async def put(self, name: str, text: str) -> None:
        await self._container.create()
        await self._container.client.upload_blob(
            self._container.prefix + name,
            text.encode("utf-8"),
            overwrite=True,
            content_settings=_csv_content(),
        )

    async def names(self, since: date, until: date) -> list[str]:
        found: list[str] = []
        for prefix in day_prefixes(since, until):
            start = self._container.prefix + prefix
            async for blob in self._container.client.list_blobs(name_starts_with=start):
                if blob.name.endswith(self.suffix):
                    found.append(blob.name[len(self._container.prefix) :])
        return sorted(found)

    async def get(self, name: str) -> str:
        stream = await self._container.client.download_blob(self._container.prefix + name)
        return (await stream.readall()).decode("utf-8")

    async def aclose(self) -> None:
        await self._container.aclose()


def _csv_content() -> Any:
    from azure.storage.blob import ContentSettings

    return ContentSettings(content_type="text/csv; charset=utf-8")


def results_store(
    location: str, connection_string: str | None, client_id: str | None, suffix: str = ".csv"
) -> FolderResults | ContainerResults:
    """Files named `<yyyy>/<mm>/<dd>/<name><suffix>` in a folder or a container."""
    parsed = parse_location(location, connection_string)
    if isinstance(parsed, Path):
        return FolderResults(parsed, suffix)
    # No retries inside the SDK: the probe's delivery retries (and spools) itself.
    return ContainerResults(Container(parsed, client_id, retry_total=0), suffix)
