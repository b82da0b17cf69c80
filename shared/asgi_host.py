"""Serves a FunctionApp's own HTTP registrations as an ASGI app, for uvicorn.

This is the local, CI and on-premises host: the same decorated functions that run in
Azure, with the same route templates and host.json route prefix, and no second route
table. Catch-all routes go last, as in the Functions host, where literal routes win.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_PARAM = re.compile(r"\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::([A-Za-z]+))?\??\}")
_CONVERTERS = {"int": "int", "float": "float", "guid": "uuid"}


def route_path(template: str, prefix: str = "") -> str:
    """Translate a Functions route template (`{x}`, `{*rest}`, `{id:int}`) to Starlette's."""

    def convert(match: re.Match[str]) -> str:
        catch_all, name, constraint = match.groups()
        if catch_all:
            return f"{{{name}:path}}"
        converter = _CONVERTERS.get((constraint or "").lower())
        return f"{{{name}:{converter}}}" if converter else f"{{{name}}}"

    parts = [p.strip("/") for p in (prefix, _PARAM.sub(convert, template)) if p.strip("/")]
    return "/" + "/".join(parts)


def host_route_prefix(host_json: Path) -> str:
    try:
        host = json.loads(host_json.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "api"
    prefix = host.get("extensions", {}).get("http", {}).get("routePrefix", "api")
    return str(prefix)


def http_routes(function_app: Any, prefix: str) -> list[Route]:
    routes: list[tuple[bool, Route]] = []
    for function in function_app.get_functions():
        trigger = function.get_trigger().get_dict_repr()
        if trigger.get("type") != "httpTrigger":
            continue
        template = trigger.get("route") or function.get_function_name()
        methods = [getattr(m, "value", str(m)) for m in trigger.get("methods") or ["GET", "POST"]]
        route = Route(
            route_path(template, prefix),
            endpoint=function.get_user_function(),
            methods=methods,
            name=function.get_function_name(),
        )
        routes.append(("{*" in template, route))
    return [route for _, route in sorted(routes, key=lambda item: item[0])]


def build_asgi_app(
    function_app: Any,
    host_json: Path,
    on_startup: Callable[[], Awaitable[None]] | None = None,
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
    unrouted: Callable[[Request], Awaitable[Response]] | None = None,
) -> Starlette:
    """`unrouted` answers what no registered route takes (e.g. a method no route lists)."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if on_startup is not None:
            await on_startup()
        yield
        if on_shutdown is not None:
            await on_shutdown()

    routes = http_routes(function_app, host_route_prefix(host_json))
    handlers: dict[Any, Any] = {}
    if unrouted is not None:

        async def answer(request: Request, _exc: Exception) -> Response:
            return await unrouted(request)

        handlers = {404: answer, 405: answer}
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers)
