"""Sending a request to its upstream deployment and relaying the answer, streamed or whole."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
from starlette.responses import Response, StreamingResponse

from shared.errors import GatewayError, error_body, upstream_failure
from shared.secrets import CachedSecrets, SecretNotFound, SecretProviderError
from shared.upstream_client import UpstreamClient
from shared.upstreams import Operation, PublicModel, Upstream

log = logging.getLogger("tollgate.relay")

# Headers the gateway owns or that describe the upstream hop, never relayed to the client.
_DROPPED = frozenset(
    {
        "connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding",
        "date", "server", "set-cookie", "upgrade", "trailer", "te", "proxy-authenticate",
        "www-authenticate", "x-request-id", "api-key", "authorization",
    }
)  # fmt: skip
_OWNED_PREFIXES = ("x-ratelimit-", "x-tollgate-")
# An upstream answering these means the gateway is misconfigured; the client cannot fix it.
_MISCONFIGURED = frozenset({401, 403, 404})


async def forward(
    client: UpstreamClient,
    secrets: CachedSecrets,
    model: PublicModel,
    payload: dict[str, Any],
    request_id: str,
) -> Response:
    upstream = model.upstream
    payload["model"] = upstream.target
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    resp = await _send_with_rotation(client, secrets, upstream, model.operation, data, request_id)
    headers = relayed_headers(resp.headers, request_id, upstream.name)
    if resp.status in _MISCONFIGURED:
        resp.release()
        log.error("upstream %s answered %s", upstream.name, resp.status)
        raise upstream_failure(
            502, "The upstream deployment rejected the gateway.", "upstream_rejected"
        )
    if payload.get("stream") is True and resp.status == 200:
        headers.setdefault("cache-control", "no-cache")
        headers["x-accel-buffering"] = "no"
        return StreamingResponse(
            relay_stream(resp, upstream.name), status_code=200, headers=headers
        )
    try:
        body = await resp.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise _transport_error(upstream, exc) from None
    finally:
        resp.release()
    return Response(content=body, status_code=resp.status, headers=headers)


async def relay_stream(resp: aiohttp.ClientResponse, upstream_name: str) -> AsyncIterator[bytes]:
    """Pass chunks through as they arrive; on the client's disconnect the task is
    cancelled and `finally` drops the upstream connection, which cancels it upstream."""
    completed = False
    try:
        async for chunk in resp.content.iter_any():
            yield chunk
        completed = True
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("stream from %s broke: %s", upstream_name, type(exc).__name__)
        message = "The upstream stream was interrupted."
        yield b"data: " + error_body(message, type="upstream_error", code="stream_interrupted")
        yield b"\n\n"
    finally:
        if completed:
            resp.release()
        else:
            resp.close()


def relayed_headers(
    upstream: Mapping[str, str], request_id: str, upstream_name: str
) -> dict[str, str]:
    headers = {
        name: value
        for name, value in upstream.items()
        if name.lower() not in _DROPPED and not name.lower().startswith(_OWNED_PREFIXES)
    }
    upstream_request_id = upstream.get("x-request-id")
    if upstream_request_id:
        headers["x-upstream-request-id"] = upstream_request_id
    headers["x-request-id"] = request_id
    headers["x-tollgate-upstream"] = upstream_name
    return headers


async def _send_with_rotation(
    client: UpstreamClient,
    secrets: CachedSecrets,
    upstream: Upstream,
    op: Operation,
    data: bytes,
    request_id: str,
) -> aiohttp.ClientResponse:
    key = await _upstream_key(secrets.get(upstream.key_secret), upstream)
    resp = await _post(client, upstream, op, data, key, request_id)
    if resp.status != 401:
        return resp
    resp.release()
    log.warning("upstream %s refused its key; fetching the key again", upstream.name)
    key = await _upstream_key(secrets.refresh(upstream.key_secret, key), upstream)
    return await _post(client, upstream, op, data, key, request_id)


async def _upstream_key(fetch: Any, upstream: Upstream) -> str:
    try:
        key: str = await fetch
    except (SecretNotFound, SecretProviderError) as exc:
        log.error("no key for upstream %s: %s", upstream.name, type(exc).__name__)
        raise upstream_failure(
            502, "The gateway could not obtain the upstream key.", "upstream_key_unavailable"
        ) from None
    return key


async def _post(
    client: UpstreamClient,
    upstream: Upstream,
    op: Operation,
    data: bytes,
    key: str,
    request_id: str,
) -> aiohttp.ClientResponse:
    headers = {
        "content-type": "application/json",
        "accept": "application/json",
        "x-ms-client-request-id": request_id,
        **upstream.auth_headers(key),
    }
    try:
        return await client.post(upstream.url(op), headers, data)
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise _transport_error(upstream, exc) from None


def _transport_error(upstream: Upstream, exc: BaseException) -> GatewayError:
    log.warning("upstream %s failed: %s", upstream.name, type(exc).__name__)
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return upstream_failure(504, "The upstream deployment timed out.", "upstream_timeout")
    return upstream_failure(
        502, "The upstream deployment could not be reached.", "upstream_unreachable"
    )
