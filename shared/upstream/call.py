"""One call to one upstream: its key (fetched again once on a 401) and its transport errors."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterable
from typing import Any
from urllib.parse import urlparse

import aiohttp

from shared.auth.secret_cache import CachedSecrets
from shared.auth.secrets import SecretNotFound, SecretProviderError
from shared.errors import GatewayError, upstream_failure
from shared.routes import Operation
from shared.upstream.client import UpstreamClient, UpstreamTimeout
from shared.upstream.upstreams import Upstream

log = logging.getLogger("tollgate.relay")
Body = bytes | AsyncIterable[bytes] | None


async def call_upstream(
    client: UpstreamClient,
    secrets: CachedSecrets,
    upstream: Upstream,
    op: Operation,
    data: Body,
    request_id: str,
    target: tuple[str, str] | None = None,
    content_type: str = "application/json",
) -> tuple[aiohttp.ClientResponse, str]:
    """The upstream's response, and the key it was sent (no answer may carry it on). `target`
    (method, URL) overrides the operation's POST, for stored objects. A body that streams
    (an upload) is sent once: a refused key is fetched again for the next call only."""
    method, url = target or ("POST", upstream.url(op))
    key = await _upstream_key(secrets.get(upstream.key_secret), upstream)
    resp = await _post(client, upstream, method, url, data, key, request_id, content_type)
    if resp.status != 401:
        return resp, key
    if not isinstance(data, bytes | None):
        with contextlib.suppress(SecretNotFound, SecretProviderError):
            await secrets.refresh(upstream.key_secret, key)
        return resp, key
    resp.release()
    log.warning("upstream %s refused its key; fetching the key again", upstream.name)
    key = await _upstream_key(secrets.refresh(upstream.key_secret, key), upstream)
    return await _post(client, upstream, method, url, data, key, request_id, content_type), key


async def _upstream_key(fetch: Any, upstream: Upstream) -> str:
    try:
        key: str = await fetch
    except (SecretNotFound, SecretProviderError) as exc:
        # A missing secret's message names where it was looked for (never a value).
        why = str(exc) if isinstance(exc, SecretNotFound) else type(exc).__name__
        log.error("no key for upstream %s: %s", upstream.name, why)
        raise upstream_failure(
            502, "The gateway could not obtain the upstream key.", "upstream_key_unavailable"
        ) from None
    return key


async def _post(
    client: UpstreamClient,
    upstream: Upstream,
    method: str,
    url: str,
    data: Body,
    key: str,
    request_id: str,
    content_type: str,
) -> aiohttp.ClientResponse:
    headers = {
        "content-type": content_type,
        "accept": "application/json",
        "x-ms-client-request-id": request_id,
        **upstream.auth_headers(key),
    }
    try:
        return await client.post(url, headers, data, method)
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise _body_error(exc) or transport_error(upstream, exc, request_id) from None


def _body_error(exc: BaseException) -> GatewayError | None:
    """The gateway's own error (a body over the limit, a malformed form) raised while an
    upload streamed, which aiohttp wraps in a connection error."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, GatewayError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


_PHASES = {"connect": "connecting", "first_byte": "first byte", "idle": "silent too long"}


def transport_error(upstream: Upstream, exc: BaseException, request_id: str = "") -> GatewayError:
    phase = exc.phase if isinstance(exc, UpstreamTimeout) else ""
    if isinstance(exc, aiohttp.SocketTimeoutError):
        phase = "idle"  # the body went silent past the read timeout
    host = urlparse(upstream.base_url).netloc
    log.warning(
        "request_id=%s upstream %s (%s) failed: %s %s",
        request_id or "-",
        upstream.name,
        host,
        type(exc).__name__,
        phase,
        extra={"request_id": request_id, "upstream": upstream.name, "host": host},
    )
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        where = f" ({_PHASES[phase]})" if phase in _PHASES else ""
        message = f"The upstream deployment timed out{where}."
        return upstream_failure(504, message, "upstream_timeout")
    return upstream_failure(
        502, "The upstream deployment could not be reached.", "upstream_unreachable"
    )
