"""One pooled aiohttp session per worker process, created on first use inside its loop."""

from __future__ import annotations

import asyncio

import aiohttp


class UpstreamClient:
    def __init__(
        self, connect_timeout: float, read_timeout: float, pool_size: int, first_byte: float = 180
    ):
        self._first_byte = first_byte
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            connect=connect_timeout,
            sock_connect=connect_timeout,
            sock_read=read_timeout,
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

    async def post(self, url: str, headers: dict[str, str], data: bytes) -> aiohttp.ClientResponse:
        """The response once its headers are in: at most the first-byte timeout away."""
        async with asyncio.timeout(self._first_byte):
            return await self.session().post(url, headers=headers, data=data, allow_redirects=False)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
