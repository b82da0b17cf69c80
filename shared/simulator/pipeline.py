"""The steps every API operation shares once its route has authenticated the call: latency and
queued faults (`admit`), the simulated generation wait, and rendering an answer or an error."""

from __future__ import annotations

import asyncio

from aiohttp import web

from . import errors
from .config import SimulatorConfig
from .state import Call, SimState
from .streaming import close_connection

JSON = "application/json"


async def admit(call: Call, state: SimState) -> None:
    """Apply latency and any queued fault; raises the fault's error if it has a status."""
    fault = state.faults.take(call.model) if call.operation != "models" else None
    call.fault = fault
    delay_ms = state.config.latency_ms
    if fault is not None:
        call.record["fault"] = fault.to_json()
        delay_ms += fault.delay_ms or 0
    if delay_ms:
        await asyncio.sleep(delay_ms / 1000)
    if fault is not None and fault.status is not None and fault.echo is not None:
        raise errors.echoed(fault.status, fault.echo, dict(call.request.headers))
    if fault is not None and fault.status is not None:
        body = fault.body
        if body is None:
            api_version = call.request.query.get("api-version")
            retry = fault.retry_seconds()
            body = errors.injected(
                call.azure or call.foundry,
                fault.status,
                call.model,
                call.operation,
                api_version,
                retry,
            )
        raise errors.ApiError(fault.status, body, fault.retry_headers())


async def generate(config: SimulatorConfig, tokens: int) -> None:
    """A non-streamed answer's wait: the time to first token, then ``tokens`` at the set rate."""
    generation_ms = config.ttft_ms
    if config.tokens_per_second:
        generation_ms += 1000 * tokens / config.tokens_per_second
    if generation_ms:
        await asyncio.sleep(generation_ms / 1000)


def resets(call: Call) -> bool:
    """The call's fault drops the connection (``reset_after_chunks``)."""
    return call.fault is not None and call.fault.reset_after_chunks is not None


def error_response(call: Call, error: errors.ApiError) -> web.Response:
    call.record["status"] = error.status
    return web.Response(
        status=error.status,
        body=error.encode(),
        content_type=error.content_type,
        headers=error.headers,
    )


def ok(
    call: Call, body: bytes, content_type: str = JSON, charset: str | None = None
) -> web.Response:
    call.record["status"] = 200
    return web.Response(body=body, content_type=content_type, charset=charset)


def reset_response(call: Call) -> web.StreamResponse:
    """A reset fault on a non-streaming request: the connection drops before any answer."""
    close_connection(call)
    return web.Response(status=200)
