"""The gateway's HTTP handlers, on Starlette types (which the Functions HTTP extension uses): model
calls with a JSON body (chat, responses, legacy completions, embeddings, images, speech), the
model list with each model's
capabilities, health, and what no route takes."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response

from shared.errors import GatewayError, not_found
from shared.gateway import Gateway
from shared.http.access import allowed_models, resolve_model
from shared.http.body import check_interpreted_fields
from shared.http.cached import answer_hit, look_up, mark
from shared.http.frame import serve
from shared.http.inbound import checked_model_name, read_json_body, request_id_of
from shared.http.owned import own_files
from shared.http.policy import admit, chained, redact
from shared.http.screening import drop, screen_prompt, screened
from shared.limits.headers import rate_limit_headers
from shared.registry.systems import Caller
from shared.routes import Operation, Route, Style, allowed_methods
from shared.usage.account import Account
from shared.usage.content import ContentCapture
from shared.usage.counts import Units


async def completions(request: Request, route: Route) -> Response:
    """A model call with a JSON body (chat, responses, completions, embeddings, image
    generation, speech), in any style."""
    style, operation = route.style, route.operation
    if style is None or operation is None:
        raise TypeError(f"route {route.name} is not a model call")

    async def work(gateway: Gateway, account: Account, caller: Caller) -> Response:
        body = await read_json_body(request, gateway.settings.max_body_bytes)
        check_interpreted_fields(body)
        account.model = checked_model_name(_model_name(request, style, body))
        account.stream = body.get("stream") is True
        model = resolve_model(gateway.config, caller, account.model, operation)
        if operation is Operation.RESPONSES:
            model = await chained(gateway.owners, caller, model, body)
            account.bind_responses(gateway.owners.remember_soon)
            if body.get("background") is True:
                account.hold_background(gateway.background.hold_soon)
        if operation is Operation.CHAT or operation is Operation.RESPONSES:
            await own_files(gateway, caller, body)
        redact(caller, model, body)
        if operation is Operation.SPEECH:  # priced per character spoken
            text = body.get("input")
            account.units = Units(characters=len(text) if isinstance(text, str) else 0)
        if caller.system.content_logging is not None:
            account.content = ContentCapture(gateway.content, caller.system.content_logging, body)
        screening = screen_prompt(gateway, caller, model, body, account)
        try:
            use = await look_up(gateway, caller, model, body, request.headers, account)
            if use.kept is None:
                await admit(gateway, caller, model, body, account)
            await screened(screening, account)
        finally:
            drop(screening)
        if use.kept is not None:
            return await answer_hit(gateway, caller, model, body, account, use.kept)
        response = await gateway.dispatcher.forward(model, body, account.request_id, account)
        response.headers.update(rate_limit_headers(account.reservation))
        mark(response, use)
        return response

    return await serve(request, style.value, operation.value, work)


async def list_models(request: Request, route: Route) -> Response:
    style = route.style
    if style is None:
        raise TypeError(f"route {route.name} names no style")

    async def work(gateway: Gateway, account: Account, caller: Caller) -> Response:
        data = [
            {
                "id": m.name,
                "object": "model",
                "created": 0,
                "owned_by": "tollgate",
                "capabilities": capabilities(m.serves or frozenset({m.operation})),
            }
            for m in allowed_models(gateway.config, caller)
        ]
        account.close_error(200, None)  # a success with no tokens
        return Response(
            json.dumps({"object": "list", "data": data}),
            media_type="application/json",
            headers={"x-request-id": account.request_id},
        )

    return await serve(request, style.value, "models", work)


def capabilities(serves: frozenset[Operation]) -> dict[str, bool]:
    """What a model answers, under Azure's model-list names (and `responses`)."""
    return {
        "chat_completion": Operation.CHAT in serves,
        "completion": Operation.COMPLETIONS in serves,
        "embeddings": Operation.EMBEDDINGS in serves,
        "responses": Operation.RESPONSES in serves,
        "image_generation": Operation.IMAGES in serves,
        "image_edit": Operation.IMAGE_EDITS in serves,
        "audio_transcription": Operation.TRANSCRIPTIONS in serves,
        "audio_translation": Operation.TRANSLATIONS in serves,
        "audio_speech": Operation.SPEECH in serves,
        "inference": True,
        "fine_tune": False,
    }


async def health(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


async def fallback(request: Request) -> Response:
    methods = allowed_methods(request.url.path)
    if methods is None:
        error = not_found(UNKNOWN_ROUTE, "not_found")
    else:
        allow = ", ".join(methods)
        message = f"Method {request.method} is not allowed here; use {allow}."
        error = GatewayError(405, message, code="method_not_allowed", headers={"allow": allow})
    return error.to_response({"x-request-id": request_id_of(request)})


UNKNOWN_ROUTE = (
    "Unknown route. This gateway serves OpenAI's paths (/v1/chat/completions, /v1/responses, "
    "/v1/embeddings, /v1/completions, /v1/images/..., /v1/audio/..., /v1/files, /v1/batches, "
    "/v1/models), the same under /openai/v1/, Azure OpenAI's "
    "(/openai/deployments/{deployment}/chat/completions?api-version=..., and its other "
    "operations), and the seed's (/gateway/chat/completions/{model})."
)


def _model_name(request: Request, style: Style, body: dict[str, object]) -> object:
    if style is Style.GATEWAY:
        return request.path_params.get("model")
    if style is Style.AZURE:
        return request.path_params.get("deployment")
    return body.get("model")
