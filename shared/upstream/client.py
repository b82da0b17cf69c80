"""One pooled aiohttp session per worker process, created on first use inside its loop, and
the timeouts of an exchange: connect, first byte (the response's headers) and idle (silence
while the body arrives), each governing only its own phase."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable

import aiohttp


class UpstreamTimeout(TimeoutError):
    """An upstream exchange outlived the timeout of its connect or first_byte phase (a silent
    body fails with aiohttp's SocketTimeoutError, also a TimeoutError)."""

    def __init__(self, phase: str):
        super().__init__(phase)
        self.phase = phase


class UpstreamClient:
    def __init__(
        self, connect_timeout: float, read_timeout: float, pool_size: int, first_byte: float = 180
    ):
        self._first_byte = first_byte
        self._idle = read_timeout
        # No sock_read: aiohttp would apply it to the wait for the headers as well.
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=connect_timeout, sock_connect=connect_timeout
        )
        self._pool_size = pool_size
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._pool_size, limit_per_host=0, ttl_dns_cache=300, keepalive_timeout=60
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                skip_auto_headers=("User-Agent",),
                raise_for_status=False,
            )
        return self._session

    async def post(
        self,
        url: str,
        headers: dict[str, str],
        data: bytes | AsyncIterable[bytes] | None,
        method: str = "POST",
    ) -> aiohttp.ClientResponse:
        """The response once its headers are in (at most the first-byte timeout away); from then
        on, silence longer than the read timeout fails a read of its body with a TimeoutError."""
        try:
            async with asyncio.timeout(self._first_byte):
                session = self.session()
                resp = await session.request(
                    method, url, headers=headers, data=data, allow_redirects=False
                )
        except aiohttp.ConnectionTimeoutError:
            raise UpstreamTimeout("connect") from None
        except TimeoutError:
            raise UpstreamTimeout("first_byte") from None
        self._watch_body(resp)
        return resp

    def _watch_body(self, resp: aiohttp.ClientResponse) -> None:
        # aiohttp's own read timeout (rescheduled on every packet: cheaper than a timer per
        # chunk), set on this connection only now, so it never covered the wait for headers.
        # Each new request on the connection resets it (the session's sock_read is None).
        protocol = resp.connection.protocol if resp.connection is not None else None
        if protocol is not None:
            protocol.read_timeout = self._idle
            protocol.start_timeout()

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
