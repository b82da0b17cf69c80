"""The local host's guard against slow and too many clients: a connection whose request (head
and body) has not arrived within its deadline is closed, counted from the request's first byte,
or from the connection's opening when it sends nothing; between requests, uvicorn's keep-alive
timeout applies. Past the connection limit, a request gets an OpenAI-shaped 503. (In Azure,
the Functions front end stands in front of the app instead.)"""

from __future__ import annotations

import asyncio
import logging
from asyncio import TimerHandle
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from shared.errors import error_body

log = logging.getLogger("tollgate.host")
DEFAULT_DEADLINE = 30.0
_FULL = error_body(
    "The gateway holds as many connections as it may; retry shortly.",
    type="server_error",
    code="too_many_connections",
)
_FULL_HEADERS = [
    (b"content-type", b"application/json"),
    (b"content-length", str(len(_FULL)).encode()),
    (b"retry-after", b"1"),
    (b"connection", b"close"),
]


class DeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline for each request to arrive in (the uvicorn
    Config's `request_deadline` attribute, seconds) and its `limit_concurrency` as a limit on
    connections answered in OpenAI's shape."""

    def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self._deadline = float(getattr(config, "request_deadline", DEFAULT_DEADLINE))
        self._timer: TimerHandle | None = None
        self._limit, self.limit_concurrency = self.limit_concurrency, None  # checked in _bounded
        if self._limit is not None:
            self.app = self._bounded(self.app)

    def _bounded(self, app: Any) -> Any:
        async def bounded(scope: Any, receive: Any, send: Any) -> None:
            if self._limit is not None and len(self.connections) > self._limit:
                log.warning("connection limit (%d) reached: answering 503", self._limit)
                await send({"type": "http.response.start", "status": 503, "headers": _FULL_HEADERS})
                await send({"type": "http.response.body", "body": _FULL})
                return
            await app(scope, receive, send)

        return bounded

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._timer = self.loop.call_later(self._deadline, self._expire)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        if not self.transport.is_closing():
            log.info("closing a connection whose request did not arrive in %gs", self._deadline)
            self.transport.close()
