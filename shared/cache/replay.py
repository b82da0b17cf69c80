"""A stored whole answer replayed as the stream a streamed request expects.

The chunks are the ones OpenAI sends, one choice after another: a role chunk, the text (with its
logprobs), the tool calls, a finish chunk; then, when the request asked for it, the usage chunk.
"""

from __future__ import annotations

import json
from typing import Any

from shared.routes import Operation

Json = dict[str, Any]
DONE = b"data: [DONE]\n\n"


def replayed(operation: Operation, answer: bytes, include_usage: bool) -> bytes:
    """The whole SSE body a streamed `operation` request gets for a stored whole answer."""
    whole: Json = json.loads(answer)
    if operation is Operation.CHAT:
        header = _header(whole, "chat.completion.chunk", ("service_tier", "system_fingerprint"))
        chunks = [{**header, "choices": [c]} for c in _chat_choices(whole["choices"])]
    elif operation is Operation.COMPLETIONS:
        header = _header(whole, "text_completion", ("system_fingerprint",))
        chunks = [{**header, "choices": [c]} for c in _text_choices(whole["choices"])]
    else:
        raise ValueError(f"{operation} answers are never streamed")
    if include_usage:
        chunks = [{**chunk, "usage": None} for chunk in chunks]
        chunks.append({**header, "choices": [], "usage": whole["usage"]})
    return b"".join(_event(chunk) for chunk in chunks) + DONE


def _header(whole: Json, kind: str, optional: tuple[str, ...]) -> Json:
    header = {key: whole[key] for key in ("id", "object", "created", "model")} | {"object": kind}
    return header | {key: whole[key] for key in optional if whole.get(key) is not None}


def _chat_choices(choices: list[Json]) -> list[Json]:
    return [c for position, choice in _in_order(choices) for c in _chat_steps(position, choice)]


def _chat_steps(position: int, choice: Json) -> list[Json]:
    """A role chunk, the message's parts (the first with the logprobs), a finish chunk."""
    index = choice.get("index", position)
    deltas = [*_message_deltas(choice.get("message") or {}), {}]
    steps = [_chat_choice(index, delta) for delta in deltas]
    steps[0]["logprobs"] = choice.get("logprobs")
    steps[-1]["finish_reason"] = choice["finish_reason"]
    return [_chat_choice(index, {"role": "assistant", "content": "", "refusal": None}), *steps]


def _message_deltas(message: Json) -> list[Json]:
    """The message as deltas: text (with any annotations), refusal, tool calls, function call."""
    text = {key: message[key] for key in ("content", "annotations") if message.get(key)}
    deltas = [text] if text else []
    if message.get("refusal"):
        deltas.append({"refusal": message["refusal"]})
    if message.get("tool_calls"):
        calls = [{"index": k, **call} for k, call in enumerate(message["tool_calls"])]
        deltas.append({"tool_calls": calls})
    if message.get("function_call"):
        deltas.append({"function_call": message["function_call"]})
    return deltas


def _chat_choice(index: int, delta: Json) -> Json:
    return {"index": index, "delta": delta, "logprobs": None, "finish_reason": None}


def _text_choices(choices: list[Json]) -> list[Json]:
    out: list[Json] = []
    for position, choice in _in_order(choices):
        index = choice.get("index", position)
        text, logprobs = choice.get("text") or "", choice.get("logprobs")
        out.append({"text": text, "index": index, "logprobs": logprobs, "finish_reason": None})
        out.append(
            {"text": "", "index": index, "logprobs": None, "finish_reason": choice["finish_reason"]}
        )
    return out


def _in_order(choices: list[Json]) -> list[tuple[int, Json]]:
    """(position, choice), sorted by the choice's index (its position when it has none)."""
    return sorted(enumerate(choices), key=lambda pair: pair[1].get("index", pair[0]))


def _event(chunk: Json) -> bytes:
    data = json.dumps(chunk, ensure_ascii=False, separators=(",", ":"))
    return f"data: {data}\n\n".encode()
