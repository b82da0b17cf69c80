"""The OpenAI / Azure API routes: auth, validation, faults, then the operation itself."""

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
from .embeddings import embeddings_body
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
_JSON = "application/json"
# The Responses API's operations: api-key works on every path; the model is always in the body.
_RESPONSES_OPERATIONS = ("responses", "stored", "input_tokens")

Operation = Callable[[Call, SimState], Awaitable[web.StreamResponse]]


def route(operation: str, azure: bool) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A request handler running the shared pipeline for one operation and wire format."""

    async def handler(request: web.Request) -> web.StreamResponse:
        state = request.app[STATE]
        call = await _begin(request, azure, operation, state)
        try:
            if operation == "unknown":
                raise errors.resource_not_found(azure, request.method, request.path)
            _check_access(call, state)
            if operation in ("chat", "embeddings", "responses", "input_tokens"):
                call.model = _resolve_model(call)
            return await _OPERATIONS[operation](call, state)
        except errors.ApiError as error:
            return _error_response(call, error)
        except asyncio.CancelledError:
            # With handler_cancellation, aiohttp cancels us when the client goes away.
            call.record["client_disconnected"] = True
            raise

    return handler


async def _begin(request: web.Request, azure: bool, operation: str, state: SimState) -> Call:
    request_id = str(uuid.uuid4()) if azure else "req_" + uuid.uuid4().hex
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
    return Call(request, azure, operation, record, body)


def _presented_key(call: Call) -> str | None:
    headers = call.request.headers
    if (call.azure or call.operation in _RESPONSES_OPERATIONS) and "api-key" in headers:
        return headers["api-key"]
    scheme, _, token = headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _check_access(call: Call, state: SimState) -> None:
    key = _presented_key(call)
    if key is None or key not in state.config.api_keys:
        raise errors.unauthorized(call.azure, key is not None)
    if call.azure:
        version = call.request.query.get("api-version")
        if not version:
            raise errors.resource_not_found(True, call.request.method, call.request.path)
        if not _API_VERSION_RE.match(version):
            raise errors.unsupported_api_version()


def _resolve_model(call: Call) -> str:
    if not isinstance(call.body, dict):
        message = "We could not parse the JSON body of your request. Expected a JSON object."
        raise errors.bad_request(message)
    in_path = call.azure and call.operation not in _RESPONSES_OPERATIONS
    model: Any = call.request.match_info["deployment"] if in_path else call.body.get("model")
    if not isinstance(model, str) or not model:
        raise errors.bad_request("you must provide a model parameter", "model")
    wanted = content.EMBEDDING_MODELS if call.operation == "embeddings" else content.CHAT_MODELS
    if model not in wanted:
        if model in content.CHAT_MODELS | content.EMBEDDING_MODELS:
            raise errors.wrong_operation(call.azure, model, call.operation)
        raise errors.model_not_found(call.azure, model)
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
                call.azure, fault.status, call.model, call.operation, api_version, retry
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


def _chat_reply(call: Call, state: SimState) -> ChatReply:
    body: dict[str, Any] = call.body
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise errors.bad_request("'messages' must be a non-empty array", "messages")
    if not all(isinstance(m, dict) for m in messages):
        raise errors.bad_request("each message must be an object", "messages")
    options = body.get("stream_options")
    if options is not None and body.get("stream") is not True:
        message = "The 'stream_options' parameter is only allowed when 'stream' is enabled."
        raise errors.bad_request(message, "stream_options")
    limit = _int_param(body, "max_completion_tokens", 1, 1_000_000)
    if limit is None:
        limit = _int_param(body, "max_tokens", 1, 1_000_000)
    n = _int_param(body, "n", 1, 128) or 1
    natural = state.config.completion_tokens
    length = natural if limit is None else min(natural, limit)
    assert call.model is not None
    return ChatReply(
        completion_id=new_completion_id(),
        created=int(time.time()),
        model=content.response_model(call.model, call.azure),
        text_pieces=content.reply_pieces(content.last_user_text(messages), length),
        finish_reason="length" if length < natural else "stop",
        n=n,
        prompt_tokens=content.prompt_tokens(messages),
        azure=call.azure,
        include_usage=isinstance(options, dict) and options.get("include_usage") is True,
    )


async def _chat(call: Call, state: SimState) -> web.StreamResponse:
    reply = _chat_reply(call, state)
    await _admit(call, state)
    if call.record["stream"]:
        call.record["status"] = 200
        return await stream_reply(call, reply, state.config)
    config = state.config
    generation_ms = config.ttft_ms
    if config.tokens_per_second:
        generation_ms += 1000 * len(reply.text_pieces) / config.tokens_per_second
    if generation_ms:
        await asyncio.sleep(generation_ms / 1000)
    if call.fault is not None and call.fault.reset_after_chunks is not None:
        return _reset_response(call)
    return _ok(call, completion_body(reply))


async def _embeddings(call: Call, state: SimState) -> web.StreamResponse:
    assert call.model is not None
    body = embeddings_body(call.body, call.model)
    await _admit(call, state)
    if call.fault is not None and call.fault.reset_after_chunks is not None:
        return _reset_response(call)
    return _ok(call, body)


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
    "responses": _responses,
    "stored": _stored,
    "input_tokens": _input_tokens,
    "embeddings": _embeddings,
    "models": _models,
}
