"""The ``/_sim/`` control API: faults, run-time config, the request log, and what files, uploads
and batches the simulator holds. No auth: loopback."""

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


async def list_files(request: web.Request) -> web.Response:
    """Every file kept, oldest first, with the SHA-256 of its bytes."""
    state = request.app[STATE]
    state.settle_batches()
    return web.json_response({"files": [f.summary() for f in state.files.values()]})


async def clear_files(request: web.Request) -> web.Response:
    request.app[STATE].files.clear()
    return web.json_response({"files": []})


async def list_uploads(request: web.Request) -> web.Response:
    """Every multipart file part received (the last 1000): what arrived, byte for byte."""
    return web.json_response({"uploads": request.app[STATE].uploads.snapshot()})


async def clear_uploads(request: web.Request) -> web.Response:
    request.app[STATE].uploads.clear()
    return web.json_response({"uploads": []})


async def list_batches(request: web.Request) -> web.Response:
    """How many batches were ever created, and every batch kept, oldest first."""
    state = request.app[STATE]
    kept = [batch.view(state.files) for batch in state.batches.values()]
    return web.json_response({"created": state.batches_created, "batches": kept})


async def clear_batches(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.batches.clear()
    state.batches_created = 0
    return web.json_response({"created": 0, "batches": []})


def add_control_routes(app: web.Application) -> None:
    app.router.add_post("/_sim/faults", add_fault)
    app.router.add_get("/_sim/faults", list_faults)
    app.router.add_delete("/_sim/faults", clear_faults)
    app.router.add_get("/_sim/config", get_config)
    app.router.add_post("/_sim/config", update_config)
    app.router.add_get("/_sim/requests", list_requests)
    app.router.add_delete("/_sim/requests", clear_requests)
    app.router.add_get("/_sim/files", list_files)
    app.router.add_delete("/_sim/files", clear_files)
    app.router.add_get("/_sim/uploads", list_uploads)
    app.router.add_delete("/_sim/uploads", clear_uploads)
    app.router.add_get("/_sim/batches", list_batches)
    app.router.add_delete("/_sim/batches", clear_batches)
