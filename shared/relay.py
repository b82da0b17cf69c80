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
from shared.metering import Meter
from shared.secrets import CachedSecrets, SecretNotFound, SecretProviderError
from shared.stream_usage import UsageTap
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
    meter: Meter | None = None,
) -> Response:
    """Send the request upstream and relay the answer; `meter`, when given, is settled on
    every path that returns (the caller settles it when this raises)."""
    upstream = model.upstream
    payload["model"] = upstream.target
    stream = payload.get("stream") is True
    strip_usage = meter is not None and stream and _ask_for_usage(payload, upstream)
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    resp = await _send_with_rotation(client, secrets, upstream, model.operation, data, request_id)
    headers = relayed_headers(resp.headers, request_id, upstream.name)
    if resp.status in _MISCONFIGURED:
        resp.release()
        log.error("upstream %s answered %s", upstream.name, resp.status)
        raise upstream_failure(
            502, "The upstream deployment rejected the gateway.", "upstream_rejected"
        )
    if stream and resp.status == 200:
        headers.setdefault("cache-control", "no-cache")
        headers["x-accel-buffering"] = "no"
        tap = UsageTap(strip_usage) if meter is not None else None
        return RelayedStream(resp, upstream.name, tap, meter, headers)
    try:
        body = await resp.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise _transport_error(upstream, exc) from None
    finally:
        resp.release()
    if meter is not None:
        meter.settle_body(resp.status, body)
    return Response(content=body, status_code=resp.status, headers=headers)


class RelayedStream(StreamingResponse):
    """Relays upstream chunks as they arrive. Its own end, however it comes (finished, client
    gone, never started), drops the upstream connection if still open and settles the meter."""

    def __init__(
        self,
        resp: aiohttp.ClientResponse,
        upstream_name: str,
        tap: UsageTap | None,
        meter: Meter | None,
        headers: dict[str, str],
    ):
        self._upstream = resp
        self._tap = tap
        self._meter = meter
        super().__init__(relay_stream(resp, upstream_name, tap), status_code=200, headers=headers)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._upstream.close()
            if self._meter is not None and self._tap is not None:
                self._meter.settle_stream(self._tap)


async def relay_stream(
    resp: aiohttp.ClientResponse, upstream_name: str, tap: UsageTap | None = None
) -> AsyncIterator[bytes]:
    """Pass chunks through as they arrive; on the client's disconnect the task is
    cancelled and `finally` drops the upstream connection, which cancels it upstream."""
    completed = False
    try:
        async for chunk in resp.content.iter_any():
            out = tap.feed(chunk) if tap is not None else chunk
            if out:
                yield out
        rest = tap.flush() if tap is not None else b""
        if rest:
            yield rest
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


def _ask_for_usage(payload: dict[str, Any], upstream: Upstream) -> bool:
    """Ask the upstream to report a stream's usage; True when the client did not ask itself
    (so the usage chunk must be taken out of what it sees)."""
    options = payload.get("stream_options")
    if options is not None and not isinstance(options, dict):
        return False  # malformed: let the upstream say so
    if (options or {}).get("include_usage") is True or not upstream.reports_stream_usage:
        return False
    payload["stream_options"] = {**(options or {}), "include_usage": True}
    return True


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
