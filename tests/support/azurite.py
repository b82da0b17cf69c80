"""Azurite (Blob Storage emulator, from npm) on a random 127.0.0.1 port.

`azurite(log_path)` serves plain HTTP and accepts the account key (a connection string).
`azurite_oauth(directory)` serves HTTPS with a self-signed certificate and also accepts bearer
tokens (``--oauth basic``): Azurite then decodes the JWT without checking its signature and
requires ``iat``, ``nbf`` <= now <= ``exp``, an ``iss`` starting with ``https://sts.windows.net/``
(or another Azure AD cloud's) and an ``aud`` of ``https://storage.azure.com`` (or the account's
blob endpoint). Bearer tokens are refused over HTTP, hence HTTPS.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.keyvault_standin import write_self_signed_cert
from tests.support.processes import ROOT, free_port

# Azurite's documented, public development account (not a secret).
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


@dataclass(frozen=True)
class SecureAzurite:
    """An Azurite blob service over HTTPS that accepts OAuth bearer tokens."""

    account_url: str  # https://127.0.0.1:<port>/devstoreaccount1
    connection_string: str  # the account key over HTTPS, for test set-up and inspection
    ca_file: Path  # the self-signed certificate it serves; trust it, never disable verification
    log_path: Path  # Azurite's debug log (says why a token was refused)

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


@contextmanager
def azurite(log_path: Path) -> Iterator[str]:
    """Yields a connection string for a fresh, in-memory Azurite blob service."""
    port = free_port()
    with _running(port, [], log_path):
        yield (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};"
        )


@contextmanager
def azurite_oauth(directory: Path) -> Iterator[SecureAzurite]:
    """A fresh, in-memory Azurite over HTTPS with ``--oauth basic``; files go in `directory`."""
    cert_path, key_path = write_self_signed_cert(directory)
    debug_log = directory / "azurite-debug.log"
    extra = [
        "--cert",
        str(cert_path),
        "--key",
        str(key_path),
        "--oauth",
        "basic",
        "--debug",
        str(debug_log),
    ]
    port = free_port()
    with _running(port, extra, directory / "azurite.log"):
        account_url = f"https://127.0.0.1:{port}/{ACCOUNT}"
        yield SecureAzurite(
            account_url=account_url,
            connection_string=(
                f"DefaultEndpointsProtocol=https;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
                f"BlobEndpoint={account_url};"
            ),
            ca_file=cert_path,
            log_path=debug_log,
        )


def connection_string(port: int) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};"
    )


class DiskAzurite:
    """Azurite keeping its data in a folder: a test may stop it and start it again."""

    def __init__(self, location: Path, log_path: Path):
        self.port = free_port()
        self.location, self.log_path = location, log_path
        self.connection_string = connection_string(self.port)
        self._running: Any = None

    def start(self) -> None:
        self._running = _running(self.port, [], self.log_path, self.location)
        self._running.__enter__()

    def stop(self) -> None:
        if self._running is not None:
            self._running.__exit__(None, None, None)
            self._running = None


@contextmanager
def _running(
    port: int, extra_args: list[str], log_path: Path, location: Path | None = None
) -> Iterator[None]:
    binary = ROOT / "node_modules" / ".bin" / "azurite-blob"
    if not binary.exists():
        raise RuntimeError("Azurite is missing: run `make install` (npm install)")
    storage = ["--location", str(location)] if location else ["--inMemoryPersistence"]
    args = [
        str(binary),
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        *storage,
        "--skipApiVersionCheck",
        "--disableTelemetry",
        "--loose",
        "--silent",
        *extra_args,
    ]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(port, process)
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("Azurite exited at start")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("Azurite did not start")
