"""The OpenAI / Azure / Azure AI Foundry API routes: auth, validation, faults, then the
operation itself."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from . import content, errors
from .answers import chat_reply, check_model, text_completion_reply
from .batches_api import batches
from .completions import text_completion_body
from .embeddings import embeddings_body
from .entra import entra_token_accepted
from .files_api import files
from .image_edits import edit_images
from .images import DEFAULT_MODEL as DEFAULT_IMAGE_MODEL
from .images import images_body, parse_request
from .pipeline import admit, error_response, generate, ok, reset_response, resets
from .responses import input_tokens_body, response_body, responses_reply
from .speech import speak
from .state import REQUEST_ID, STATE, Call, SimState
from .stored import find, starting_after, store, stored_answer
from .streaming import stream_reply
from .transcriptions import transcribe
from .uploads import is_multipart, read_form
from .wire import AZURE_MODELS_BODY, OPENAI_MODELS_BODY, completion_body, dumps

_API_VERSION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$|^(preview|latest)$")
# Azure AI Foundry's model-inference API answers only these; any other is a 404.
FOUNDRY_API_VERSIONS = frozenset({"2024-05-01-preview", "2025-04-01-preview"})
# The Responses API's operations: api-key works on every path; the model is always in the body.
_RESPONSES_OPERATIONS = ("responses", "stored", "input_tokens")
# The operations whose body may be a multipart form: read streamed, once the call is authorised
# (files and batches name no model, so only a fault without a `deployment` applies to them).
_MULTIPART_OPERATIONS = frozenset({"files", "transcriptions", "translations", "image_edits"})
# Operations whose model comes as the images' default when none is named.
_IMAGE_OPERATIONS = ("images", "image_edits")

Operation = Callable[[Call, SimState], Awaitable[web.StreamResponse]]


def route(
    operation: str, azure: bool, foundry: bool = False
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A request handler running the shared pipeline for one operation and wire format:
    OpenAI's (``azure`` False), Azure OpenAI's (``azure``) or Azure AI Foundry's model-inference
    API (``foundry``: Azure's auth and errors, OpenAI's answers, the model named in the body)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        state = request.app[STATE]
        call = await _begin(request, azure, foundry, operation, state)
        try:
            if operation == "unknown":
                raise errors.resource_not_found(azure or foundry, request.method, request.path)
            _check_access(call, state)
            if operation in _MULTIPART_OPERATIONS and is_multipart(request):
                await _read_form(call, state)
            if operation in content.MODELS_BY_OPERATION:
                call.model = _resolve_model(call)
            return await _OPERATIONS[operation](call, state)
        except errors.ApiError as error:
            return error_response(call, error)
        except asyncio.CancelledError:
            # With handler_cancellation, aiohttp cancels us when the client goes away.
            call.record["client_disconnected"] = True
            raise

    return handler


async def _begin(
    request: web.Request, azure: bool, foundry: bool, operation: str, state: SimState
) -> Call:
    request_id = str(uuid.uuid4()) if azure or foundry else "req_" + uuid.uuid4().hex
    request[REQUEST_ID] = request_id
    streamed = operation in _MULTIPART_OPERATIONS and is_multipart(request)
    raw = await request.read() if request.body_exists and not streamed else b""
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    record: dict[str, Any] = {
        "id": request_id,
        "time": time.time(),
        "method": request.method,
        "operation": operation,
        "path": request.path,
        "query": dict(request.query),
        "headers": {k.lower(): v for k, v in request.headers.items()},
        "body": body,
        "body_is_json": bool(raw) and body is not None,
        "stream": isinstance(body, dict) and body.get("stream") is True,
        "status": None,
        "client_disconnected": False,
    }
    state.log.add(record)
    return Call(request, azure, operation, record, body, foundry=foundry)


async def _read_form(call: Call, state: SimState) -> None:
    """Read a multipart body streamed: its fields become the call's body, and each file part's
    size and SHA-256 go to the request log and the upload log."""
    form = await read_form(call.request, call.operation)
    call.form = form
    call.body = dict(form.fields)
    call.record["body"] = call.body
    call.record["uploads"] = [upload.summary() for upload in form.uploads]
    for upload in form.uploads:
        where = {"request_id": call.record["id"], "path": call.request.path}
        state.uploads.add({**where, "operation": call.operation, **upload.summary()})


def _takes_api_key(call: Call) -> bool:
    """Azure's paths (v1 too) and Foundry's take an `api-key` header; OpenAI's only Bearer."""
    azure_path = call.request.path.startswith("/openai/")
    return call.azure or call.foundry or azure_path or call.operation in _RESPONSES_OPERATIONS


def _presented_key(call: Call) -> str | None:
    headers = call.request.headers
    if _takes_api_key(call) and "api-key" in headers:
        return headers["api-key"]
    scheme, _, token = headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _check_access(call: Call, state: SimState) -> None:
    key = _presented_key(call)
    if key is not None and entra_token_accepted(key, state.config.entra_audience):
        call.record["auth"] = "entra"
    elif key is None or key not in state.config.api_keys:
        raise errors.unauthorized(call.azure or call.foundry, key is not None)
    if call.foundry:
        # Foundry answers a missing or unknown api-version as a path it does not have.
        if call.request.query.get("api-version") not in FOUNDRY_API_VERSIONS:
            raise errors.resource_not_found(True, call.request.method, call.request.path)
    elif call.azure:
        version = call.request.query.get("api-version")
        if not version:
            raise errors.resource_not_found(True, call.request.method, call.request.path)
        if not _API_VERSION_RE.match(version):
            raise errors.unsupported_api_version()


def _resolve_model(call: Call) -> str:
    if not isinstance(call.body, dict):
        message = "We could not parse the JSON body of your request. Expected a JSON object."
        raise errors.bad_request(message)
    return check_model(_named_model(call), call.operation, call.azure, call.foundry)


def _named_model(call: Call) -> str:
    """The deployment in an Azure path, else the body's `model` (Foundry: or its header)."""
    in_path = call.azure and call.operation not in _RESPONSES_OPERATIONS
    model: Any = call.request.match_info["deployment"] if in_path else call.body.get("model")
    if model is None and call.operation in _IMAGE_OPERATIONS and not call.foundry:
        model = DEFAULT_IMAGE_MODEL  # OpenAI's default when a request names no model
    if call.foundry and model is None:
        model = call.request.headers.get("x-ms-model-mesh-model-name")
    if not isinstance(model, str) or not model:
        if call.foundry:
            raise errors.no_model_name()
        raise errors.bad_request("you must provide a model parameter", "model")
    return model


async def _models(call: Call, state: SimState) -> web.StreamResponse:
    await admit(call, state)
    return ok(call, AZURE_MODELS_BODY if call.azure else OPENAI_MODELS_BODY)


async def _chat(call: Call, state: SimState) -> web.StreamResponse:
    assert call.model is not None
    natural = state.config.completion_tokens
    reply = chat_reply(call.body, call.model, call.azure, call.foundry, natural)
    await admit(call, state)
    if call.record["stream"]:
        call.record["status"] = 200
        return await stream_reply(call, reply, state.config)
    await generate(state.config, len(reply.text_pieces))
    if resets(call):
        return reset_response(call)
    return ok(call, completion_body(reply))


async def _completions(call: Call, state: SimState) -> web.StreamResponse:
    assert call.model is not None
    natural = state.config.completion_tokens
    reply = text_completion_reply(call.body, call.model, call.azure, call.foundry, natural)
    await admit(call, state)
    if call.record["stream"]:
        call.record["status"] = 200
        return await stream_reply(call, reply, state.config)
    await generate(state.config, reply.length)
    if resets(call):
        return reset_response(call)
    return ok(call, text_completion_body(reply))


async def _embeddings(call: Call, state: SimState) -> web.StreamResponse:
    assert call.model is not None
    body = embeddings_body(call.body, call.model)
    await admit(call, state)
    if resets(call):
        return reset_response(call)
    return ok(call, body)


async def _images(call: Call, state: SimState) -> web.StreamResponse:
    assert call.model is not None
    request = parse_request(call.body, call.model)
    await admit(call, state)
    await generate(state.config, 0)
    if resets(call):
        return reset_response(call)
    return ok(call, images_body(request, call.model, str(call.request.url.origin())))


async def _responses(call: Call, state: SimState) -> web.StreamResponse:
    assert call.model is not None
    reply = responses_reply(call.body, call.model, call.azure, state.config.completion_tokens)
    await admit(call, state)
    if call.record["stream"]:
        call.record["status"] = 200
        store(state.responses, reply, call.model, 0)
        return await stream_reply(call, reply, state.config)
    if reply.background:
        # Answered at once, queued; the stored response finishes background_ms later.
        if resets(call):
            return reset_response(call)
        store(state.responses, reply, call.model, state.config.background_ms)
        return ok(call, dumps(reply.response("queued")).encode())
    if state.config.ttft_ms:
        await asyncio.sleep(state.config.ttft_ms / 1000)
    if resets(call):
        return reset_response(call)
    store(state.responses, reply, call.model, 0)
    return ok(call, response_body(reply))


async def _input_tokens(call: Call, state: SimState) -> web.StreamResponse:
    body = input_tokens_body(call.body)
    await admit(call, state)
    if resets(call):
        return reset_response(call)
    return ok(call, body)


async def _stored(call: Call, state: SimState) -> web.StreamResponse:
    request = call.request
    response_id = request.match_info["response_id"]
    action = request.match_info.get("action", "")
    if request.method == "GET" and not action and request.query.get("stream", "").lower() == "true":
        return await _resume(call, state, response_id)
    answer = stored_answer(state.responses, response_id, request.method, action)
    return ok(call, dumps(answer).encode())


async def _resume(call: Call, state: SimState, response_id: str) -> web.StreamResponse:
    """``GET .../responses/{id}?stream=true&starting_after=N``: the events after N, replayed."""
    after = starting_after(call.request.query.get("starting_after"))
    entry = find(state.responses, response_id)
    call.record["stream"] = True
    call.model = entry.model  # so that latency and faults apply as to its create call
    await admit(call, state)
    call.record["status"] = 200
    return await stream_reply(
        call, entry.reply, state.config, starting_after=after, settle=entry.settle
    )


_OPERATIONS: dict[str, Operation] = {
    "chat": _chat,
    "completions": _completions,
    "responses": _responses,
    "stored": _stored,
    "input_tokens": _input_tokens,
    "embeddings": _embeddings,
    "images": _images,
    "models": _models,
    "files": files,
    "batches": batches,
    "transcriptions": transcribe,
    "translations": transcribe,
    "speech": speak,
    "image_edits": edit_images,
}
