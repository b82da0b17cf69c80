"""The reference for `make bench`: the leanest relay Python does well, on aiohttp alone.

It forwards each POST (path, query, `api-key`) to one upstream and streams the answer back chunk
by chunk. No keys, limits, records or logs: what is left is the floor any Python gateway stands
on, measured in the same run as Tollgate so that ratios to it hold from machine to machine.
`python -m bench.reference_relay --port N --upstream URL`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import ClientSession, TCPConnector, web

FORWARDED = ("api-key", "content-type")
SESSION = web.AppKey("session", ClientSession)
UPSTREAM = web.AppKey("upstream", str)


async def relay(request: web.Request) -> web.StreamResponse:
    session = request.app[SESSION]
    url = request.app[UPSTREAM] + request.path_qs
    headers = {name: request.headers[name] for name in FORWARDED if name in request.headers}
    async with session.post(url, data=await request.read(), headers=headers) as upstream:
        answer = web.StreamResponse(status=upstream.status)
        answer.content_type = upstream.content_type
        await answer.prepare(request)
        async for chunk in upstream.content.iter_any():
            await answer.write(chunk)
        await answer.write_eof()
        return answer


async def healthz(_: web.Request) -> web.Response:
    return web.Response(text="ok")


async def app(upstream: str) -> web.Application:
    application = web.Application()
    application[UPSTREAM] = upstream.rstrip("/")

    async def session(application: web.Application) -> AsyncIterator[None]:
        application[SESSION] = ClientSession(connector=TCPConnector(limit=256))
        yield
        await application[SESSION].close()

    application.cleanup_ctx.append(session)
    application.router.add_post("/{path:.*}", relay)
    application.router.add_get("/healthz", healthz)
    return application


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.reference_relay")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    with contextlib.suppress(ImportError):  # the same event loop as `tollgate serve` runs on
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    web.run_app(app(args.upstream), host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
