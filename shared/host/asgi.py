"""Serves a FunctionApp's own HTTP registrations as an ASGI app, for uvicorn.

This is the local, CI and on-premises host: the same decorated functions that run in
Azure, with the same route templates and host.json route prefix, and no second route
table. Catch-all routes go last, as in the Functions host, where literal routes win.
Timer functions fire on their NCRONTAB schedules (in UTC, as in Azure by default).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from azure.functions.timer import TimerRequest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Receive, Scope, Send

from shared.host import ncrontab

log = logging.getLogger("tollgate.host")

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


def timer_jobs(function_app: Any) -> list[tuple[str, ncrontab.Schedule, Callable[..., Any]]]:
    jobs = []
    for function in function_app.get_functions():
        trigger = function.get_trigger().get_dict_repr()
        if trigger.get("type") == "timerTrigger":
            schedule = ncrontab.parse(trigger["schedule"])
            jobs.append((function.get_function_name(), schedule, function.get_user_function()))
    return jobs


async def run_timer(name: str, schedule: ncrontab.Schedule, handler: Callable[..., Any]) -> None:
    while True:
        now = datetime.now(UTC)
        await asyncio.sleep((schedule.next_after(now) - now).total_seconds())
        try:
            result = handler(TimerRequest(past_due=False))
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("timer function %s failed", name)


def build_asgi_app(
    function_app: Any,
    host_json: Path,
    on_startup: Callable[[], Awaitable[None]] | None = None,
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
    unrouted: Callable[[Request], Awaitable[Response]] | None = None,
) -> FunctionsHost:
    """`unrouted` answers what no registered route takes (e.g. a method no route lists)."""
    functions = _Once(function_app)
    routes = http_routes(functions, host_route_prefix(host_json))
    return FunctionsHost(routes, timer_jobs(functions), on_startup, on_shutdown, unrouted)


class FunctionsHost:
    """The ASGI app: each request goes straight to the first route that takes it, as a
    Starlette Request, and the Response it returns answers it. No middleware stack: the
    handlers answer every error themselves, and this is the whole of the host's per-request
    work."""

    def __init__(
        self,
        routes: list[Route],
        timers: list[tuple[str, ncrontab.Schedule, Callable[..., Any]]],
        on_startup: Callable[[], Awaitable[None]] | None,
        on_shutdown: Callable[[], Awaitable[None]] | None,
        unrouted: Callable[[Request], Awaitable[Response]] | None,
    ):
        self.routes = routes
        # Each route's literal head: most routes are ruled out by it before their regex runs.
        self._heads = [(route.path.split("{", 1)[0], route) for route in routes]
        self._timers = timers
        self._on_startup, self._on_shutdown = on_startup, on_shutdown
        self._unrouted = unrouted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = None
        allowed_elsewhere = False
        path = scope["path"]  # served at the root: no root_path
        for head, route in self._heads:
            if not path.startswith(head):
                continue
            match, child = route.matches(scope)
            if match is Match.FULL:
                scope.update(child)
                endpoint = route.endpoint
                break
            allowed_elsewhere = allowed_elsewhere or match is Match.PARTIAL
        request = Request(scope, receive, send)
        if endpoint is not None:
            response = await endpoint(request)
        elif self._unrouted is not None:
            response = await self._unrouted(request)
        else:
            status = 405 if allowed_elsewhere else 404
            response = Response(status_code=status)
        await response(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        timers: list[asyncio.Task[None]] = []
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if self._on_startup is not None:
                        await self._on_startup()
                except (Exception, SystemExit):  # said plainly, once: no traceback
                    await send({"type": "lifespan.startup.failed", "message": _last_error()})
                    return
                timers = [asyncio.create_task(run_timer(*job)) for job in self._timers]
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for task in timers:
                    task.cancel()
                if self._on_shutdown is not None:
                    await self._on_shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _last_error() -> str:
    line = traceback.format_exc(limit=1).strip().splitlines()[-1]
    return line.removeprefix("SystemExit: ")


class _Once:
    """FunctionApp.get_functions() may be called only once; remember its answer."""

    def __init__(self, function_app: Any):
        self._app = function_app
        self._functions: list[Any] | None = None

    def get_functions(self) -> list[Any]:
        if self._functions is None:
            self._functions = list(self._app.get_functions())
        return self._functions
