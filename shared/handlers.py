"""The gateway's HTTP handlers, on Starlette types (which the Functions HTTP extension uses)."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from shared.access import allowed_models, authenticate, resolve_model
from shared.errors import GatewayError, not_found
from shared.gateway import Gateway, get_gateway
from shared.inbound import checked_model_name, read_json_body, request_id_of
from shared.limit_headers import rate_limit_headers
from shared.metering import Meter, estimate
from shared.registry import Caller
from shared.routes import Style, allowed_methods
from shared.upstreams import Operation, PublicModel

log = logging.getLogger("tollgate.access")


async def completions(request: Request, style: Style, operation: Operation) -> Response:
    """Chat completions and embeddings, in any of the three route styles."""
    started = time.perf_counter()
    request_id = request_id_of(request)
    system_id = model_name = "-"
    try:
        gateway = get_gateway()
        caller = await authenticate(request, gateway.registry)
        system_id = caller.system.id
        body = await read_json_body(request, gateway.settings.max_body_bytes)
        model_name = checked_model_name(_model_name(request, style, body))
        model = resolve_model(gateway.config, caller, model_name, operation)
        meter = await admit(gateway, caller, model, body)
        response = await _forward_metered(gateway, model, body, request_id, meter)
    except GatewayError as exc:
        response = exc.to_response({"x-request-id": request_id})
    _log_access(request_id, style, operation.value, system_id, model_name, response, started)
    return response


async def list_models(request: Request) -> Response:
    request_id = request_id_of(request)
    try:
        gateway = get_gateway()
        caller = await authenticate(request, gateway.registry)
    except GatewayError as exc:
        return exc.to_response({"x-request-id": request_id})
    data = [
        {"id": m.name, "object": "model", "created": 0, "owned_by": "tollgate"}
        for m in allowed_models(gateway.config, caller)
    ]
    return Response(
        json.dumps({"object": "list", "data": data}),
        media_type="application/json",
        headers={"x-request-id": request_id},
    )


async def health(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


async def fallback(request: Request) -> Response:
    methods = allowed_methods(request.url.path)
    if methods is None:
        error = not_found("Unknown route.", "not_found")
    else:
        allow = ", ".join(methods)
        message = f"Method {request.method} is not allowed here; use {allow}."
        error = GatewayError(405, message, code="method_not_allowed", headers={"allow": allow})
    return error.to_response({"x-request-id": request_id_of(request)})


async def admit(
    gateway: Gateway, caller: Caller, model: PublicModel, body: dict[str, Any]
) -> Meter | None:
    """Reserve the request against the caller's limits (None when no limit applies)."""
    if not caller.scopes(model.name):
        return None
    default = gateway.settings.default_completion_tokens
    prompt, reserve = estimate(body, model.operation, model.tokenizer, default)
    reservation = await gateway.limiter.admit(caller, model.name, reserve)
    return None if reservation is None else Meter(gateway.limiter, reservation, prompt)


async def _forward_metered(
    gateway: Gateway, model: PublicModel, body: dict[str, Any], request_id: str, meter: Meter | None
) -> Response:
    try:
        response = await gateway.dispatcher.forward(model, body, request_id, meter)
    except BaseException:
        if meter is not None:
            meter.settle(0)  # nothing reached the client
        raise
    response.headers.update(rate_limit_headers(meter.reservation if meter else None))
    return response


def _model_name(request: Request, style: Style, body: dict[str, object]) -> object:
    if style is Style.GATEWAY:
        return request.path_params.get("model")
    if style is Style.AZURE:
        return request.path_params.get("deployment")
    return body.get("model")


def _log_access(
    request_id: str,
    style: Style,
    operation: str,
    system_id: str,
    model: str,
    response: Response,
    started: float,
) -> None:
    log.info(
        "request_id=%s style=%s op=%s system=%s model=%s status=%s ms=%.1f",
        request_id,
        style.value,
        operation,
        system_id,
        model,
        response.status_code,
        (time.perf_counter() - started) * 1000,
    )
