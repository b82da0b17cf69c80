"""A minimal relay on one HTTP client library, to choose the gateway's client by measurement.

`BENCH_CLIENT` is `aiohttp` or `httpx`; `BENCH_UPSTREAM` the base URL requests go to.
"""

from __future__ import annotations

import os
from typing import Any

import aiohttp
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

UPSTREAM = os.environ.get("BENCH_UPSTREAM", "http://127.0.0.1:7072")
CLIENT = os.environ.get("BENCH_CLIENT", "aiohttp")
_clients: dict[str, Any] = {}


async def relay(request: Request) -> Response:
    url = f"{UPSTREAM}{request.url.path}?{request.url.query}"
    body = await request.body()
    headers = {"api-key": request.headers.get("api-key", ""), "content-type": "application/json"}
    if CLIENT == "httpx":
        client = _clients.get("httpx") or _clients.setdefault(
            "httpx", httpx.AsyncClient(limits=httpx.Limits(max_connections=256))
        )
        answer = await client.post(url, content=body, headers=headers)
        return Response(answer.content, answer.status_code, media_type="application/json")
    session = _clients.get("aiohttp") or _clients.setdefault(
        "aiohttp", aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))
    )
    async with session.post(url, data=body, headers=headers) as resp:
        return Response(await resp.read(), resp.status, media_type="application/json")


app = Starlette(routes=[Route("/{path:path}", relay, methods=["POST"])])
