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
from .completions import (
    DEFAULT_MAX_TOKENS,
    CompletionReply,
    completion_reply,
    parse_prompt,
    text_completion_body,
)
from .config import SimulatorConfig
from .embeddings import embeddings_body
from .entra import entra_token_accepted
from .images import DEFAULT_MODEL as DEFAULT_IMAGE_MODEL
from .images import images_body, parse_request
from .responses import input_tokens_body, response_body, responses_reply
from .state import REQUEST_ID, STATE, Call, SimState
from .stored import find, starting_after, store, stored_answer
from .streaming import close_connection, stream_reply
from .wire import (
    AZURE_MODELS_BODY,
    OPENAI_MODELS_BODY,
    ChatReply,
    completion_body,
    dumps,
    new_completion_id,
)

_API_VERSION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$|^(preview|latest)$")
# Azure AI Foundry's model-inference API answers only these; any other is a 404.
FOUNDRY_API_VERSIONS = frozenset({"2024-05-01-preview", "2025-04-01-preview"})
_JSON = "application/json"
# The Responses API's operations: api-key works on every path; the model is always in the body.
_RESPONSES_OPERATIONS = ("responses", "stored", "input_tokens")

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
            if operation in content.MODELS_BY_OPERATION:
                call.model = _resolve_model(call)
            return await _OPERATIONS[operation](call, state)
        except errors.ApiError as error:
            return _error_response(call, error)
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
    raw = await request.read() if request.body_exists else b""
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
    model = _named_model(call)
    if model in content.MODELS_BY_OPERATION[call.operation]:
        return model
    if model in content.ALL_MODELS:
        raise errors.wrong_operation(call.azure or call.foundry, model, call.operation)
    if call.foundry:
        raise errors.unknown_model(model)
    raise errors.model_not_found(call.azure, model)


def _named_model(call: Call) -> str:
    """The deployment in an Azure path, else the body's `model` (Foundry: or its header)."""
    in_path = call.azure and call.operation not in _RESPONSES_OPERATIONS
    model: Any = call.request.match_info["deployment"] if in_path else call.body.get("model")
    if model is None and call.operation == "images" and not call.foundry:
        model = DEFAULT_IMAGE_MODEL  # OpenAI's default when a request names no model
    if call.foundry and model is None:
        model = call.request.headers.get("x-ms-model-mesh-model-name")
    if not isinstance(model, str) or not model:
        if call.foundry:
            raise errors.no_model_name()
        raise errors.bad_request("you must provide a model parameter", "model")
    return model


async def _admit(call: Call, state: SimState) -> None:
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


def _error_response(call: Call, error: errors.ApiError) -> web.Response:
    call.record["status"] = error.status
    return web.Response(
        status=error.status,
        body=error.encode(),
        content_type=error.content_type,
        headers=error.headers,
    )


def _ok(call: Call, body: bytes) -> web.Response:
    call.record["status"] = 200
    return web.Response(body=body, content_type=_JSON)


def _reset_response(call: Call) -> web.StreamResponse:
    """A reset fault on a non-streaming request: the connection drops before any answer."""
    close_connection(call)
    return web.Response(status=200)


async def _models(call: Call, state: SimState) -> web.StreamResponse:
    await _admit(call, state)
    return _ok(call, AZURE_MODELS_BODY if call.azure else OPENAI_MODELS_BODY)


def _int_param(body: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise errors.bad_request(f"'{name}' must be an integer between {low} and {high}", name)
    return value


def _include_usage(body: dict[str, Any]) -> bool:
    """``stream_options.include_usage``; stream_options is refused on a request not streamed."""
    options = body.get("stream_options")
    if options is not None and body.get("stream") is not True:
        message = "The 'stream_options' parameter is only allowed when 'stream' is enabled."
        raise errors.bad_request(message, "stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def _answer_model(call: Call) -> str:
    """The `model` of an answer: Foundry names the body's model as it was given."""
    assert call.model is not None
    return call.model if call.foundry else content.response_model(call.model, call.azure)


def _chat_reply(call: Call, state: SimState) -> ChatReply:
    body: dict[str, Any] = call.body
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise errors.bad_request("'messages' must be a non-empty array", "messages")
    if not all(isinstance(m, dict) for m in messages):
        raise errors.bad_request("each message must be an object", "messages")
    include_usage = _include_usage(body)
    limit = _int_param(body, "max_completion_tokens", 1, 1_000_000)
    if limit is None:
        limit = _int_param(body, "max_tokens", 1, 1_000_000)
    n = _int_param(body, "n", 1, 128) or 1
    natural = state.config.completion_tokens
    length = natural if limit is None else min(natural, limit)
    return ChatReply(
        completion_id=new_completion_id(),
        created=int(time.time()),
        model=_answer_model(call),
        text_pieces=content.reply_pieces(content.last_user_text(messages), length),
        finish_reason="length" if length < natural else "stop",
        n=n,
        prompt_tokens=content.prompt_tokens(messages),
        azure=call.azure,
        include_usage=include_usage,
    )


def _completion_reply(call: Call, state: SimState) -> CompletionReply:
    body: dict[str, Any] = call.body
    prompts = parse_prompt(body.get("prompt"))
    include_usage = _include_usage(body)
    limit = _int_param(body, "max_tokens", 0, 1_000_000)
    n = _int_param(body, "n", 1, 128) or 1
    natural = state.config.completion_tokens
    length = min(natural, DEFAULT_MAX_TOKENS if limit is None else limit)
    return completion_reply(
        prompts,
        model=_answer_model(call),
        n=n,
        length=length,
        truncated=length < natural,
        azure=call.azure,
        include_usage=include_usage,
        created=int(time.time()),
    )


async def _generate(config: SimulatorConfig, tokens: int) -> None:
    """A non-streamed answer's wait: the time to first token, then ``tokens`` at the set rate."""
    generation_ms = config.ttft_ms
    if config.tokens_per_second:
        generation_ms += 1000 * tokens / config.tokens_per_second
    if generation_ms:
        await asyncio.sleep(generation_ms / 1000)


async def _chat(call: Call, state: SimState) -> web.StreamResponse:
    reply = _chat_reply(call, state)
    await _admit(call, state)
    if call.record["stream"]:
        call.record["status"] = 200
        return await stream_reply(call, reply, state.config)
    await _generate(state.config, len(reply.text_pieces))
    if call.fault is not None and call.fault.reset_after_chunks is not None:
        return _reset_response(call)
    return _ok(call, completion_body(reply))


async def _completions(call: Call, state: SimState) -> web.StreamResponse:
    reply = _completion_reply(call, state)
    await _admit(call, state)
    if call.record["stream"]:
        call.record["status"] = 200
        return await stream_reply(call, reply, state.config)
    await _generate(state.config, reply.length)
    if call.fault is not None and call.fault.reset_after_chunks is not None:
        return _reset_response(call)
    return _ok(call, text_completion_body(reply))


async def _embeddings(call: Call, state: SimState) -> web.StreamResponse:
    assert call.model is not None
    body = embeddings_body(call.body, call.model)
    await _admit(call, state)
    if call.fault is not None and call.fault.reset_after_chunks is not None:
        return _reset_response(call)
    return _ok(call, body)


async def _images(call: Call, state: SimState) -> web.StreamResponse:
    assert call.model is not None
    request = parse_request(call.body, call.model)
    await _admit(call, state)
    await _generate(state.config, 0)
    if call.fault is not None and call.fault.reset_after_chunks is not None:
        return _reset_response(call)
    return _ok(call, images_body(request, call.model, str(call.request.url.origin())))


async def _responses(call: Call, state: SimState) -> web.StreamResponse:
    assert call.model is not None
    reply = responses_reply(call.body, call.model, call.azure, state.config.completion_tokens)
    await _admit(call, state)
    if call.record["stream"]:
        call.record["status"] = 200
        store(state.responses, reply, call.model, 0)
        return await stream_reply(call, reply, state.config)
    if reply.background:
        # Answered at once, queued; the stored response finishes background_ms later.
        if call.fault is not None and call.fault.reset_after_chunks is not None:
            return _reset_response(call)
        store(state.responses, reply, call.model, state.config.background_ms)
        return _ok(call, dumps(reply.response("queued")).encode())
    if state.config.ttft_ms:
        await asyncio.sleep(state.config.ttft_ms / 1000)
    if call.fault is not None and call.fault.reset_after_chunks is not None:
        return _reset_response(call)
    store(state.responses, reply, call.model, 0)
    return _ok(call, response_body(reply))


async def _input_tokens(call: Call, state: SimState) -> web.StreamResponse:
    body = input_tokens_body(call.body)
    await _admit(call, state)
    if call.fault is not None and call.fault.reset_after_chunks is not None:
        return _reset_response(call)
    return _ok(call, body)


async def _stored(call: Call, state: SimState) -> web.StreamResponse:
    request = call.request
    response_id = request.match_info["response_id"]
    action = request.match_info.get("action", "")
    if request.method == "GET" and not action and request.query.get("stream", "").lower() == "true":
        return await _resume(call, state, response_id)
    answer = stored_answer(state.responses, response_id, request.method, action)
    return _ok(call, dumps(answer).encode())


async def _resume(call: Call, state: SimState, response_id: str) -> web.StreamResponse:
    """``GET .../responses/{id}?stream=true&starting_after=N``: the events after N, replayed."""
    after = starting_after(call.request.query.get("starting_after"))
    entry = find(state.responses, response_id)
    call.record["stream"] = True
    call.model = entry.model  # so that latency and faults apply as to its create call
    await _admit(call, state)
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
}
