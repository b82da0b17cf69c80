"""A local stand-in for Azure Key Vault (HTTPS) and the App Service managed identity endpoint.

It speaks enough of both protocols for the real ``azure-keyvault-secrets`` aio client and the real
``azure.identity.aio.ManagedIdentityCredential`` to run unchanged against it::

    async with KeyVaultStandIn() as kv:
        monkeypatch.setenv("IDENTITY_ENDPOINT", kv.identity_endpoint)
        monkeypatch.setenv("IDENTITY_HEADER", kv.identity_header)
        kv.set_secret("aoai-key", "v1")
        client = SecretClient(kv.vault_url, ManagedIdentityCredential(),
                              connection_verify=kv.ca_file, verify_challenge_resource=False)

The servers run on the event loop that started them. A test that blocks that loop while a gateway
subprocess talks to the stand-in (``subprocess.run``, ``requests``) must use ``in_thread()``::

    with KeyVaultStandIn().in_thread() as kv:
        start_gateway({**kv.credential_env(), "TOLLGATE_KEYVAULT_URL": kv.vault_url, ...}, log)

The identity endpoint issues an opaque token for Key Vault and an unsigned, Azure-AD-shaped JWT
for any other resource (e.g. ``https://storage.azure.com`` for Azurite with ``--oauth basic``).
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import secrets
import shutil
import socket
import ssl
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VAULT_RESOURCE = "https://vault.azure.net"
STORAGE_RESOURCE = "https://storage.azure.com"
MSI_API_VERSION = "2019-08-01"
DEFAULT_TENANT = "00000000-0000-0000-0000-00000000cafe"


def write_self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """Write a CN=localhost cert (SAN IP:127.0.0.1, DNS:localhost) and key; return their paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    now = datetime.now(UTC)
    san = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        # CA:TRUE plus key identifiers keep strict verifiers (VERIFY_X509_STRICT) happy.
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "standin.crt", directory / "standin.key"
    cert_path.write_bytes(cert.public_bytes(Encoding.PEM))
    key_path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    return cert_path, key_path


def _b64url_json(value: dict[str, Any]) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _error(status: int, code: str, message: str, **headers: str) -> web.Response:
    body = {"error": {"code": code, "message": message}}
    return web.json_response(body, status=status, headers=headers)


class KeyVaultStandIn:
    """Key Vault secrets REST API over HTTPS plus an App Service identity endpoint over HTTP."""

    def __init__(self, tenant_id: str = DEFAULT_TENANT) -> None:
        self.tenant_id = tenant_id
        self.identity_header = secrets.token_urlsafe(16)
        self.token_requests: list[dict[str, str]] = []
        self._access_token = secrets.token_urlsafe(24)
        self._versions: dict[str, list[tuple[str, str]]] = {}
        self._fetches: Counter[str] = Counter()
        self._runners: list[web.AppRunner] = []
        self._tmpdir: Path | None = None
        self._vault_port = 0
        self._identity_port = 0

    async def start(self) -> None:
        self._tmpdir = Path(tempfile.mkdtemp(prefix="kv-standin-"))
        cert_path, key_path = write_self_signed_cert(self._tmpdir)
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(cert_path, key_path)
        self._vault_port = await self._serve(self._vault_app(), tls)
        self._identity_port = await self._serve(self._identity_app(), None)

    async def stop(self) -> None:
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    async def __aenter__(self) -> KeyVaultStandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @contextmanager
    def in_thread(self) -> Iterator[KeyVaultStandIn]:
        """Serve from a private event loop in a daemon thread, for synchronous tests."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="kv-standin", daemon=True)
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.start(), loop).result(timeout=30)
            yield self
        finally:
            asyncio.run_coroutine_threadsafe(self.stop(), loop).result(timeout=30)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.close()

    async def _serve(self, app: web.Application, tls: ssl.SSLContext | None) -> int:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(runner, sock, ssl_context=tls).start()
        self._runners.append(runner)
        port: int = sock.getsockname()[1]
        return port

    @property
    def vault_url(self) -> str:
        return f"https://127.0.0.1:{self._vault_port}"

    @property
    def ca_file(self) -> str:
        assert self._tmpdir is not None, "stand-in not started"
        return str(self._tmpdir / "standin.crt")

    @property
    def identity_endpoint(self) -> str:
        return f"http://127.0.0.1:{self._identity_port}/msi/token"

    def credential_env(self) -> dict[str, str]:
        """Env vars that make ManagedIdentityCredential use this stand-in's identity endpoint."""
        return {
            "IDENTITY_ENDPOINT": self.identity_endpoint,
            "IDENTITY_HEADER": self.identity_header,
        }

    @property
    def token_client_ids(self) -> list[str | None]:
        """client_id of each token request (None: the system-assigned identity was asked)."""
        return [request.get("client_id") for request in self.token_requests]

    def set_secret(self, name: str, value: str) -> str:
        """Store a new version of `name` (a rotation if it exists); return the version id."""
        version = secrets.token_hex(16)
        self._versions.setdefault(name, []).append((version, value))
        return version

    def fetch_count(self, name: str) -> int:
        """Authenticated GETs of `name` (any version, found or not); challenges not counted."""
        return self._fetches[name]

    def revoke_tokens(self) -> None:
        """Invalidate every Key Vault token (a credential's cached token then gets 401).

        Tokens for other resources are JWTs checked by their own service (see `_jwt`).
        """
        self._access_token = secrets.token_urlsafe(24)

    def _vault_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/secrets/{name}", self._get_secret)
        app.router.add_get("/secrets/{name}/{version:[^/]*}", self._get_secret)
        app.router.add_put("/secrets/{name}", self._put_secret)
        return app

    def _reject(self, request: web.Request) -> web.Response | None:
        if "api-version" not in request.query:
            return _error(400, "BadParameter", "The 'api-version' query parameter is missing.")
        auth = request.headers.get("Authorization")
        if auth == f"Bearer {self._access_token}":
            return None
        challenge = (
            f'Bearer authorization="https://login.microsoftonline.com/{self.tenant_id}", '
            f'resource="{VAULT_RESOURCE}"'
        )
        message = "Request is missing a Bearer token." if auth is None else "Invalid token."
        return _error(401, "Unauthorized", message, **{"WWW-Authenticate": challenge})

    async def _get_secret(self, request: web.Request) -> web.Response:
        rejected = self._reject(request)
        if rejected is not None:
            return rejected
        name, version = request.match_info["name"], request.match_info.get("version") or None
        self._fetches[name] += 1
        for found_version, value in reversed(self._versions.get(name, [])):
            if version in (None, found_version):
                return web.json_response(self._bundle(name, found_version, value))
        return _error(404, "SecretNotFound", f"A secret with (name/id) {name} was not found.")

    async def _put_secret(self, request: web.Request) -> web.Response:
        rejected = self._reject(request)
        if rejected is not None:
            return rejected
        body: dict[str, Any] = await request.json()
        name = request.match_info["name"]
        version = self.set_secret(name, str(body["value"]))
        return web.json_response(self._bundle(name, version, str(body["value"])))

    def _bundle(self, name: str, version: str, value: str) -> dict[str, Any]:
        now = int(time.time())
        attributes = {"enabled": True, "created": now, "updated": now, "recoveryLevel": "Purgeable"}
        secret_id = f"{self.vault_url}/secrets/{name}/{version}"
        return {"value": value, "id": secret_id, "attributes": attributes, "tags": {}}

    def _identity_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/msi/token", self._issue_token)
        return app

    async def _issue_token(self, request: web.Request) -> web.Response:
        if request.headers.get("X-IDENTITY-HEADER") != self.identity_header:
            return _error(401, "Unauthorized", "X-IDENTITY-HEADER is missing or wrong.")
        query = dict(request.query)
        resource = query.get("resource") or query.get("scope")
        if query.get("api-version") != MSI_API_VERSION or not resource:
            return _error(400, "BadRequest", "api-version and resource are required.")
        self.token_requests.append(query)
        now = int(time.time())
        expires_on = now + 3600
        if resource == VAULT_RESOURCE:
            token = self._access_token  # opaque: only this stand-in's vault checks it
        else:
            token = self._jwt(resource, query.get("client_id"), now, expires_on)
        return web.json_response(
            {
                "access_token": token,
                "expires_on": str(expires_on),
                "resource": resource,
                "token_type": "Bearer",
            }
        )

    def _jwt(self, resource: str, client_id: str | None, now: int, expires_on: int) -> str:
        """An unsigned JWT shaped like Azure AD's v1 tokens, for services that only read claims.

        Azurite's ``--oauth basic`` decodes it without checking the signature, then checks
        iat/nbf/exp, the issuer (``https://sts.windows.net/...``) and the audience (`resource`).
        """
        issued = now - 300  # Azure AD back-dates iat/nbf by five minutes for clock skew
        claims: dict[str, Any] = {
            "aud": resource,
            "iss": f"https://sts.windows.net/{self.tenant_id}/",
            "iat": issued,
            "nbf": issued,
            "exp": expires_on,
            "tid": self.tenant_id,
            "idtyp": "app",
            "uti": secrets.token_urlsafe(12),
            "ver": "1.0",
        }
        if client_id:
            claims["appid"] = client_id
        header = {"alg": "none", "typ": "JWT"}
        return f"{_b64url_json(header)}.{_b64url_json(claims)}."
