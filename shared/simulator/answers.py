"""The non-streamed answers of chat, completions, embeddings and the Responses API, built from a
request body alone: the routes render them, and a batch renders each of its lines with them."""

from __future__ import annotations

import json
import time
from typing import Any

from . import content, errors
from .completions import (
    DEFAULT_MAX_TOKENS,
    CompletionReply,
    completion_reply,
    parse_prompt,
    text_completion_body,
)
from .embeddings import embeddings_body
from .responses import response_body, responses_reply
from .wire import ChatReply, completion_body, new_completion_id

# The operations a batch can run, and so the ones `answer` renders.
BATCH_OPERATIONS = ("chat", "completions", "embeddings", "responses")


def check_model(model: str, operation: str, azure: bool, foundry: bool) -> str:
    """``model`` if it serves ``operation``; else the error the API answers for it."""
    if model in content.MODELS_BY_OPERATION[operation]:
        return model
    if model in content.ALL_MODELS:
        raise errors.wrong_operation(azure or foundry, model, operation)
    if foundry:
        raise errors.unknown_model(model)
    raise errors.model_not_found(azure, model)


def int_param(body: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise errors.bad_request(f"'{name}' must be an integer between {low} and {high}", name)
    return value


def include_usage(body: dict[str, Any]) -> bool:
    """``stream_options.include_usage``; stream_options is refused on a request not streamed."""
    options = body.get("stream_options")
    if options is not None and body.get("stream") is not True:
        message = "The 'stream_options' parameter is only allowed when 'stream' is enabled."
        raise errors.bad_request(message, "stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def answer_model(model: str, azure: bool, foundry: bool) -> str:
    """The `model` of an answer: Foundry names the body's model as it was given."""
    return model if foundry else content.response_model(model, azure)


def chat_reply(
    body: dict[str, Any], model: str, azure: bool, foundry: bool, natural: int
) -> ChatReply:
    """The reply to a chat completions body; ``natural`` is the reply's length unlimited."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise errors.bad_request("'messages' must be a non-empty array", "messages")
    if not all(isinstance(m, dict) for m in messages):
        raise errors.bad_request("each message must be an object", "messages")
    usage = include_usage(body)
    limit = int_param(body, "max_completion_tokens", 1, 1_000_000)
    if limit is None:
        limit = int_param(body, "max_tokens", 1, 1_000_000)
    n = int_param(body, "n", 1, 128) or 1
    length = natural if limit is None else min(natural, limit)
    return ChatReply(
        completion_id=new_completion_id(),
        created=int(time.time()),
        model=answer_model(model, azure, foundry),
        text_pieces=content.reply_pieces(content.last_user_text(messages), length),
        finish_reason="length" if length < natural else "stop",
        n=n,
        prompt_tokens=content.prompt_tokens(messages),
        azure=azure,
        include_usage=usage,
    )


def text_completion_reply(
    body: dict[str, Any], model: str, azure: bool, foundry: bool, natural: int
) -> CompletionReply:
    """The reply to a legacy completions body."""
    prompts = parse_prompt(body.get("prompt"))
    usage = include_usage(body)
    limit = int_param(body, "max_tokens", 0, 1_000_000)
    n = int_param(body, "n", 1, 128) or 1
    length = min(natural, DEFAULT_MAX_TOKENS if limit is None else limit)
    return completion_reply(
        prompts,
        model=answer_model(model, azure, foundry),
        n=n,
        length=length,
        truncated=length < natural,
        azure=azure,
        include_usage=usage,
        created=int(time.time()),
    )


def answer(operation: str, body: dict[str, Any], model: str, azure: bool, natural: int) -> Any:
    """The JSON of the non-streamed answer to ``body`` (its model checked), or ApiError."""
    check_model(model, operation, azure, False)
    if operation == "chat":
        raw = completion_body(chat_reply(body, model, azure, False, natural))
    elif operation == "completions":
        raw = text_completion_body(text_completion_reply(body, model, azure, False, natural))
    elif operation == "embeddings":
        raw = embeddings_body(body, model)
    else:
        raw = response_body(responses_reply(body, model, azure, natural))
    return json.loads(raw)
