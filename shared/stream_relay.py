"""Relaying a streamed answer chunk by chunk, and settling its tokens however it ends."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from starlette.responses import Response, StreamingResponse

from shared.errors import GatewayError, error_body
from shared.metering import Meter
from shared.stream_usage import UsageTap

log = logging.getLogger("tollgate.relay")


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
            self.finish()

    def finish(self) -> None:
        """Drop the upstream connection if still open and settle the meter (idempotent)."""
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


class KeepAliveStream(StreamingResponse):
    """A stream committed to the client before any deployment has answered: SSE comments keep
    idle-connection timeouts in front of the app from closing it while the attempts go on;
    their outcome is then relayed, or told as an SSE error event."""

    def __init__(self, attempts: asyncio.Future[Response], every: float, meter: Meter | None,
                 headers: dict[str, str]):  # fmt: skip
        self._attempts = attempts
        self._every = every
        self._meter = meter
        self._inner: RelayedStream | None = None
        super().__init__(self._body(), status_code=200, headers=headers,
                         media_type="text/event-stream")  # fmt: skip

    async def _body(self) -> AsyncIterator[bytes]:
        while not self._attempts.done():
            done, _ = await asyncio.wait({self._attempts}, timeout=self._every)
            if not done:
                yield b": keep-alive\n\n"
        try:
            outcome = self._attempts.result()
        except GatewayError as exc:
            yield _error_event(exc.message, exc.type, exc.code)
            return
        if isinstance(outcome, RelayedStream):
            self._inner = outcome
            async for chunk in outcome.body_iterator:
                yield bytes(chunk) if not isinstance(chunk, str) else chunk.encode()
            return
        yield _error_event(*_error_of(outcome))

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._attempts.cancel()
            if self._inner is not None:
                self._inner.finish()
            elif self._meter is not None:
                self._meter.settle(0)  # a no-op when the attempts already settled it


def _error_event(message: str, type_: str, code: str | None) -> bytes:
    return b"data: " + error_body(message, type=type_, code=code) + b"\n\n"


def _error_of(response: Response) -> tuple[str, str, str | None]:
    """The message, type and code of an upstream's error answer, or a generic one."""
    try:
        error = json.loads(bytes(response.body)).get("error") or {}
        return str(error["message"]), str(error.get("type") or "upstream_error"), error.get("code")
    except (ValueError, KeyError, AttributeError, TypeError):
        return f"The upstream answered {response.status_code}.", "upstream_error", None
