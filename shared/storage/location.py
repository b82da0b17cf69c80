"""Where a blob-backed store lives: a local folder, Azurite, or Azure through managed identity.

One rule for every store (registry, probe results, ...):
- `https://<account>.blob.core.windows.net/<container>[/<path>]`: Azure, managed identity;
- `<container>[/<path>]` when TOLLGATE_STORAGE_CONNECTION_STRING is set: that account (Azurite);
- anything else (an absolute path, `./x`, `.tollgate/x`: no container name): a local path.

A blob-backed store opens its location as a `Container`: client, credential and prefix in one
handle, closed together.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from shared.auth.secrets import build_credential
from shared.errors import ConfigError

_CONTAINER = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$")  # Azure's naming rule

if TYPE_CHECKING:  # azure-storage-blob is ~40 MB: loaded only when a blob store is used
    from azure.storage.blob.aio import ContainerClient


@dataclass(frozen=True)
class BlobLocation:
    container: str
    path: str  # a blob name, or a prefix ("" for the whole container)
    account_url: str | None = None  # set for managed identity
    connection_string: str | None = None

    def describe(self) -> str:
        return f"{self.container}/{self.path}".rstrip("/")


def parse_location(location: str, connection_string: str | None) -> BlobLocation | Path:
    if location.startswith("https://"):
        parts = urlsplit(location)
        segments = parts.path.strip("/").split("/")
        # Azurite and other emulators put the account name first in the path.
        account_segments = 1 if parts.hostname in ("127.0.0.1", "localhost") else 0
        account_path = "/".join(segments[:account_segments])
        account_url = f"https://{parts.netloc}/{account_path}".rstrip("/")
        container, *rest = segments[account_segments:] or [""]
        if not container:
            raise ConfigError(f"{location}: no container in the URL")
        return BlobLocation(container, "/".join(rest), account_url=account_url)
    container, _, path = location.partition("/")
    if connection_string and _CONTAINER.match(container):
        return BlobLocation(container, path, connection_string=connection_string)
    return Path(location)


def container_client(
    location: BlobLocation, client_id: str | None, **options: Any
) -> tuple[ContainerClient, Any]:
    """The client, and the credential to close with it (None for connection strings)."""
    from azure.storage.blob.aio import ContainerClient

    if location.connection_string:
        try:
            client = ContainerClient.from_connection_string(
                location.connection_string, container_name=location.container, **options
            )
        except ValueError:  # never quoted: the string holds the account key
            raise ConfigError("TOLLGATE_STORAGE_CONNECTION_STRING is malformed") from None
        return client, None
    credential = _credential(client_id)
    assert location.account_url is not None
    url, name = location.account_url, location.container
    return ContainerClient(url, name, credential=credential, **options), credential


def _credential(client_id: str | None) -> Any:
    return build_credential(client_id)


class Container:
    """A blob container opened at a location: its client, the credential to close with it,
    and the prefix under which the location's names live ("" for the whole container)."""

    def __init__(self, location: BlobLocation, client_id: str | None, **options: Any) -> None:
        self.location = location
        self.client, self._credential = container_client(location, client_id, **options)
        path = location.path.strip("/")
        self.prefix = f"{path}/" if path else ""
        self._created = False

    def describe(self) -> str:
        return self.location.describe()

    async def create(self) -> None:
        """Create the container if it is missing; asks the service once per handle."""
        from azure.core.exceptions import ResourceExistsError

        if not self._created:
            with contextlib.suppress(ResourceExistsError):
                await self.client.create_container()
            self._created = True

    async def aclose(self) -> None:
        await self.client.close()
        if self._credential is not None:
            await self._credential.close()
