"""A local JWKS endpoint on 127.0.0.1 that counts fetches, standing in for Entra ID's key URL::

    async with JwksServer([jwk]) as server:
        cache = JwksCache(server.url, allow_local_http=True)
        ...
        assert server.fetches == 1

`keys` may be replaced at any time (key rotation). While `gate` is cleared, requests are counted
and then held, so a test can line up concurrent callers behind one fetch. `status` other than
200 answers with that status. With `tls=(cert, key)` it serves https instead.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

KEYS_PATH = "/discovery/v2.0/keys"


class JwksServer:
    def __init__(
        self, keys: list[dict[str, Any]] | None = None, tls: tuple[Path, Path] | None = None
    ) -> None:
        self.keys: list[dict[str, Any]] = list(keys or [])
        self.status = 200
        self.fetches = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self._tls = tls
        self._fetched = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._port = 0

    @property
    def url(self) -> str:
        scheme = "https" if self._tls else "http"
        return f"{scheme}://127.0.0.1:{self._port}{KEYS_PATH}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get(KEYS_PATH, self._keys)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        context = None
        if self._tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*self._tls)
        await web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context).start()
        self._port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        self.gate.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> JwksServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def until_fetched(self, times: int) -> None:
        # Bounded, so a cache that never fetches fails the test instead of hanging it.
        async with asyncio.timeout(5), self._fetched:
            await self._fetched.wait_for(lambda: self.fetches >= times)

    async def _keys(self, request: web.Request) -> web.Response:
        async with self._fetched:
            self.fetches += 1
            self._fetched.notify_all()
        await self.gate.wait()
        if self.status != 200:
            return web.Response(status=self.status, text="unavailable")
        return web.json_response({"keys": list(self.keys)})
