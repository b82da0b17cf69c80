"""The ``/_sim/`` control API: faults, run-time config and the request log. No auth: loopback."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from .config import apply_config_update
from .faults import parse_fault
from .state import STATE


async def _json_body(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError as exc:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "body must be JSON"}), content_type="application/json"
        ) from exc


def _bad(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)


async def add_fault(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        fault = parse_fault(await _json_body(request))
    except ValueError as exc:
        return _bad(str(exc))
    state.faults.add(fault)
    return web.json_response({"queued": fault.to_json(), "pending": len(state.faults.pending())})


async def list_faults(request: web.Request) -> web.Response:
    pending = request.app[STATE].faults.pending()
    return web.json_response({"faults": [fault.to_json() for fault in pending]})


async def clear_faults(request: web.Request) -> web.Response:
    request.app[STATE].faults.clear()
    return web.json_response({"faults": []})


async def get_config(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].config.to_json())


async def update_config(request: web.Request) -> web.Response:
    config = request.app[STATE].config
    try:
        apply_config_update(config, await _json_body(request))
    except ValueError as exc:
        return _bad(str(exc))
    return web.json_response(config.to_json())


async def list_requests(request: web.Request) -> web.Response:
    return web.json_response({"requests": request.app[STATE].log.snapshot()})


async def clear_requests(request: web.Request) -> web.Response:
    request.app[STATE].log.clear()
    return web.json_response({"requests": []})


def add_control_routes(app: web.Application) -> None:
    app.router.add_post("/_sim/faults", add_fault)
    app.router.add_get("/_sim/faults", list_faults)
    app.router.add_delete("/_sim/faults", clear_faults)
    app.router.add_get("/_sim/config", get_config)
    app.router.add_post("/_sim/config", update_config)
    app.router.add_get("/_sim/requests", list_requests)
    app.router.add_delete("/_sim/requests", clear_requests)
