"""Calls to one known upstream, never failed over (no other deployment holds what they
name): a stored response (retrieve, resumed stream, delete, cancel), the files resource's files
and batches, and the gateway's own looks at them (peek, a file's lines)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from starlette.responses import Response

from shared.auth.secret_cache import CachedSecrets
from shared.errors import GatewayError, server_error
from shared.routes import Operation
from shared.upstream.answers import binary_answer, read_whole, relayed_headers, tokenless
from shared.upstream.call import Body, call_upstream
from shared.upstream.client import UpstreamClient
from shared.upstream.scrub import headers_without_key
from shared.upstream.streams import RelayedStream
from shared.upstream.upstreams import Upstream
from shared.usage.account import Account
from shared.usage.stream_tap import UsageTap


class SingleCalls:
    def __init__(self, client: UpstreamClient, secrets: CachedSecrets, total_seconds: float):
        self.client, self.secrets = client, secrets
        self._total_seconds = total_seconds

    async def stored(
        self,
        upstream: Upstream,
        method: str,
        url: str,
        request_id: str,
        account: Account,
        stream: bool = False,
    ) -> Response:
        """A call on a stored response, to the one deployment that holds it (no failover: no
        other has it), answered as the upstream answers: a resumed stream relayed as it comes."""
        relay = "events" if stream else ""
        return await self._one(upstream, method, url, request_id, account, relay=relay)

    async def on_resource(
        self,
        upstream: Upstream,
        method: str,
        url: str,
        request_id: str,
        account: Account,
        body: Body = None,
        content_type: str = "application/json",
        binary: bool = False,
    ) -> Response:
        """A call on the files resource (a file or batch): no failover, no other resource has
        them; a file's content relayed as it comes, never held whole."""
        relay = "bytes" if binary else ""
        return await self._one(
            upstream, method, url, request_id, account, body, content_type, relay
        )

    async def _one(
        self,
        upstream: Upstream,
        method: str,
        url: str,
        request_id: str,
        account: Account,
        body: Body = None,
        content_type: str = "application/json",
        relay: str = "",  # a 200 relayed as it comes: "events" (SSE), "bytes"; "": read whole
    ) -> Response:
        account.deployment, account.attempts = upstream.name, 1
        target = (method, url)
        async with asyncio.timeout(None if relay else self._total_seconds):
            resp, key = await call_upstream(
                self.client,
                self.secrets,
                upstream,
                Operation.RESPONSES,
                body,
                request_id,
                target,
                content_type,
            )
            if relay == "bytes" and resp.status == 200:
                return binary_answer(resp, upstream, request_id, account, key)
            headers = headers_without_key(
                relayed_headers(resp.headers, request_id, upstream.name), key
            )
            if relay == "events" and resp.status == 200:
                headers.setdefault("cache-control", "no-cache")
                headers["x-accel-buffering"] = "no"
                tap = UsageTap(False, Operation.RESPONSES)
                return RelayedStream(resp, upstream.name, tap, account, headers)
            answer = await read_whole(resp, upstream)
        return tokenless(resp.status, answer, key, headers, account)

    async def lines(self, upstream: Upstream, url: str, request_id: str) -> AsyncIterator[bytes]:
        """A file's lines, for the gateway's own reading (a batch's output)."""
        target = ("GET", url)
        resp, _ = await call_upstream(
            self.client, self.secrets, upstream, Operation.RESPONSES, None, request_id, target
        )
        try:
            if resp.status != 200:
                raise server_error(502, f"The file answered {resp.status}.", "upstream_error")
            rest = b""
            async for chunk in resp.content.iter_any():
                *whole, rest = (rest + chunk).split(b"\n")
                for line in whole:
                    if line.strip():
                        yield line
            if rest.strip():
                yield rest
        finally:
            resp.release()

    async def peek(self, upstream: Upstream, url: str, request_id: str) -> dict[str, Any] | None:
        """The gateway's own look at a stored response: the upstream's JSON object, {} when it
        has none (404), None when it could not say this time."""
        try:
            async with asyncio.timeout(self._total_seconds):
                resp, _ = await self._call_stored(upstream, "GET", url, request_id)
                body = await read_whole(resp, upstream)
        except (GatewayError, TimeoutError):
            return None
        if resp.status == 404:
            return {}
        try:
            value = json.loads(body) if resp.status == 200 else None
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    async def _call_stored(
        self, upstream: Upstream, method: str, url: str, request_id: str
    ) -> tuple[aiohttp.ClientResponse, str]:
        """A call with no body on a stored response's URL: the response and the key used."""
        target = (method, url)
        return await call_upstream(
            self.client, self.secrets, upstream, Operation.RESPONSES, None, request_id, target
        )
