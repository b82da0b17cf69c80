"""Relaying a streamed answer chunk by chunk, and settling its tokens however it ends."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from starlette.responses import StreamingResponse

from shared.errors import error_body
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
