"""RSA signing keys from a JWKS URL: cached by `kid`, refetched on rotation, one fetch at a time.

Keys are kept for `ttl_seconds`. A `kid` the cached set lacks (the issuer rotated its keys) causes
one refetch, and refetches start at most once per `min_refetch_seconds`, so tokens with made-up
key ids cannot make the gateway hammer the key endpoint. Concurrent callers share one fetch.

When a refresh fails, the keys already held stay in use for up to `stale_seconds` more (Entra ID
being briefly unreachable should not reject every caller); with no usable keys at all,
`get_key` raises `JwksUnavailable`, which is an outage (503), not a bad token (401).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import ssl
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp

from shared.errors import ConfigError

if TYPE_CHECKING:  # PyJWT and cryptography load with the first key set parsed
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

DEFAULT_TTL_SECONDS = 3600.0
DEFAULT_MIN_REFETCH_SECONDS = 60.0
DEFAULT_FAILURE_RETRY_SECONDS = 5.0
DEFAULT_TIMEOUT_SECONDS = 10.0
# Entra ID's key set is a few KiB; anything far larger is not a key set.
MAX_DOCUMENT_BYTES = 256 * 1024
MIN_RSA_BITS = 2048
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

log = logging.getLogger("tollgate.jwks")


class JwksUnavailable(Exception):
    """No signing keys could be fetched and none are cached: the key endpoint is unreachable."""


class JwksCache:
    """Signing keys by `kid` from one JWKS URL, fetched with aiohttp over verified TLS.

    `session` is shared and left open by `aclose()`; without one, a session is created on first
    use (inside the running loop) and closed by `aclose()`. Plain http is refused unless
    `allow_local_http` is set *and* the host is 127.0.0.1, ::1 or localhost (tests only).
    """

    def __init__(
        self,
        url: str,
        *,
        session: aiohttp.ClientSession | None = None,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        min_refetch_seconds: float = DEFAULT_MIN_REFETCH_SECONDS,
        failure_retry_seconds: float = DEFAULT_FAILURE_RETRY_SECONDS,
        stale_seconds: float | None = None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        allow_local_http: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._https = _check_url(url, allow_local_http)
        self._url = url
        self._session = session
        self._owns_session = session is None
        self._ttl = ttl_seconds
        self._min_refetch = min_refetch_seconds
        self._failure_retry = min(failure_retry_seconds, min_refetch_seconds)
        self._stale = ttl_seconds if stale_seconds is None else stale_seconds
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._clock = clock
        self._keys: dict[str, RSAPublicKey] = {}
        self._fetched_at: float | None = None
        self._next_fetch_at = -math.inf
        self._flight: asyncio.Task[None] | None = None
        self._tls: ssl.SSLContext | None = None

    @property
    def url(self) -> str:
        return self._url

    async def get_key(self, kid: str) -> RSAPublicKey | None:
        """The public key for `kid`, or None when the key set lacks it even after any refetch the
        rate limit allows. Raises JwksUnavailable when no usable key set is held."""
        now = self._clock()
        fresh = self._fetched_at is not None and now - self._fetched_at < self._ttl
        if (not fresh or kid not in self._keys) and (
            self._flight is not None or now >= self._next_fetch_at
        ):
            await self._refresh()
        if self._fetched_at is None or self._clock() - self._fetched_at >= self._ttl + self._stale:
            raise JwksUnavailable(f"no signing keys from {self._url}")
        return self._keys.get(kid)

    async def aclose(self) -> None:
        if self._flight is not None:
            self._flight.cancel()
            self._flight = None
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    def __repr__(self) -> str:
        return f"JwksCache({self._url!r}, kids={sorted(self._keys)})"

    async def _refresh(self) -> None:
        if self._flight is None:
            self._flight = asyncio.get_running_loop().create_task(self._fetch())
        # A caller that gives up (client disconnect) must not cancel the fetch others wait on.
        await asyncio.shield(self._flight)

    async def _fetch(self) -> None:
        started = self._clock()
        try:
            keys = await self._download()
        except Exception as exc:  # any failure leaves the keys already held in place
            self._next_fetch_at = started + self._failure_retry
            log.warning("JWKS fetch from %s failed: %s", self._url, _describe(exc))
        else:
            self._keys, self._fetched_at = keys, started
            self._next_fetch_at = started + self._min_refetch
            log.info("JWKS fetched from %s: %d key(s)", self._url, len(keys))
        finally:
            self._flight = None

    async def _download(self) -> dict[str, RSAPublicKey]:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._owns_session = True
        # An explicit verifying context: a shared session's connector may have been built with
        # ssl=False for some other purpose, and that must not apply to signing keys.
        tls: ssl.SSLContext | bool = await self._tls_context() if self._https else True
        async with self._session.get(
            self._url,
            ssl=tls,
            timeout=self._timeout,
            allow_redirects=False,
            headers={"Accept": "application/json"},
        ) as resp:
            if resp.status != 200:
                raise ValueError(f"HTTP {resp.status}")
            body = bytearray()
            async for chunk in resp.content.iter_chunked(64 * 1024):
                body += chunk
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise ValueError("document too large")
        keys = parse_jwks(json.loads(body))
        if not keys:
            raise ValueError("no usable RSA signing keys")
        return keys

    async def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            # Loading the system CA bundle reads files: keep it off the event loop.
            self._tls = await asyncio.to_thread(ssl.create_default_context)
        return self._tls


def parse_jwks(document: Any) -> dict[str, RSAPublicKey]:
    """The RSA signature keys of a JWKS document by `kid`; other and malformed entries are
    skipped, so one odd key cannot hide the rest."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS document")
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
    from jwt.algorithms import RSAAlgorithm
    from jwt.exceptions import PyJWTError

    keys: dict[str, RSAPublicKey] = {}
    for jwk in document["keys"]:
        if not isinstance(jwk, dict):
            continue
        kid = jwk.get("kid")
        if (
            not isinstance(kid, str)
            or not kid
            or jwk.get("kty") != "RSA"
            or jwk.get("use", "sig") != "sig"
            or jwk.get("alg", "RS256") != "RS256"
            or "d" in jwk  # a private key has no business in a published key set
        ):
            continue
        try:
            key = RSAAlgorithm.from_jwk(jwk)
        except (PyJWTError, ValueError, TypeError, KeyError):
            continue
        if isinstance(key, RSAPublicKey) and key.key_size >= MIN_RSA_BITS:
            keys[kid] = key
    return keys


def _check_url(url: str, allow_local_http: bool) -> bool:
    """True for https; raises ConfigError for anything else but permitted local http."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    if parts.scheme == "http" and allow_local_http and parts.hostname in LOCAL_HOSTS:
        return False
    raise ConfigError(f"JWKS URL must be https: {url!r}")


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
