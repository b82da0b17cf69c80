"""Which answers the cache may keep, and the whole answer a delivered stream adds up to.

An entry is always a whole (non-streamed) JSON answer; a stream a client received is kept only
when it adds up, chunk by chunk, to the answer OpenAI would have sent had it not been streamed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from shared.routes import Operation

Json = dict[str, Any]

FINISHED = frozenset({"stop", "length", "tool_calls", "function_call"})
DELTA_KEYS = frozenset({"role", "content", "refusal", "tool_calls", "function_call", "annotations"})
TOOL_CALL_KEYS = frozenset({"index", "id", "type", "function"})
COMPLETION_LOGPROBS = ("tokens", "token_logprobs", "top_logprobs", "text_offset")
CHAT_LOGPROBS = ("content", "refusal")


class Unstorable(Exception):
    """The stream does not add up to an answer the cache may keep."""


def storable(operation: Operation, body: bytes) -> bool:
    """Whether a whole (non-streamed) 200 answer to `operation` may be stored."""
    try:
        answer = json.loads(body)
    except (ValueError, RecursionError):
        return False
    if not isinstance(answer, dict):
        return False
    if operation is Operation.EMBEDDINGS:
        return _nonempty_list(answer.get("data"))
    if operation in (Operation.CHAT, Operation.COMPLETIONS):
        choices = answer.get("choices")
        return (
            _nonempty_list(choices)
            and all(isinstance(c, dict) and c.get("finish_reason") in FINISHED for c in choices)
            and not any(_spoken(c) for c in choices)  # a replayed stream could not carry it
            and isinstance(answer.get("usage"), dict)
        )
    return False


def _spoken(choice: dict[str, Any]) -> bool:
    message = choice.get("message")
    return isinstance(message, dict) and message.get("audio") is not None


def assembled(operation: Operation, stream: bytes, usage: dict[str, int]) -> bytes | None:
    """The whole answer (JSON) a delivered chat or completions stream adds up to; None if it
    may not be kept. `usage` is the stream's usage as flat counts (details under dotted names).
    """
    if operation not in (Operation.CHAT, Operation.COMPLETIONS) or "total_tokens" not in usage:
        return None
    try:
        chunks = list(_chunks(stream))
        answer = _chat(chunks) if operation is Operation.CHAT else _completion(chunks)
    except Unstorable:
        return None
    answer["usage"] = _nested(usage)
    return json.dumps(answer, ensure_ascii=False, separators=(",", ":")).encode()


# --- the stream's events ---


def _chunks(stream: bytes) -> Iterator[Json]:
    """The stream's JSON chunks, up to `data: [DONE]`; Unstorable if it never comes."""
    for data in _events(stream):
        if data == "[DONE]":
            return
        try:
            chunk = json.loads(data)
        except (ValueError, RecursionError):
            raise Unstorable("a data line is not JSON") from None
        if not isinstance(chunk, dict) or chunk.get("error") is not None:
            raise Unstorable("an error event")
        yield chunk
    raise Unstorable("no [DONE]")


def _events(stream: bytes) -> Iterator[str]:
    """Each SSE event's data (its data lines joined), comments and other fields skipped."""
    data: list[str] = []
    # splitlines on bytes splits at LF, CRLF and CR only: SSE's own line ends.
    for line in [*stream.splitlines(), b""]:
        if not line:
            if data:
                yield "\n".join(data)
            data = []
            continue
        name, _, value = line.partition(b":")
        if name == b"data":
            data.append(_utf8(value.removeprefix(b" ")))


def _utf8(value: bytes) -> str:
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise Unstorable("not UTF-8") from None


# --- chat ---


@dataclass
class _ChatChoice:
    index: int
    content: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)
    tool_calls: dict[int, Json] = field(default_factory=dict)
    function_call: Json | None = None
    annotations: list[Any] = field(default_factory=list)
    logprobs: Json | None = None
    finish_reason: str | None = None


def _chat(chunks: list[Json]) -> Json:
    choices: dict[int, _ChatChoice] = {}
    for chunk in chunks:
        for part in _choices(chunk):
            index = _int(part.get("index"))
            choice = choices.setdefault(index, _ChatChoice(index))
            _add_delta(choice, _dict(part.get("delta") or {}))
            choice.logprobs = _merged_logprobs(choice.logprobs, part, CHAT_LOGPROBS)
            choice.finish_reason = _finish(choice.finish_reason, part)
    answer = _header(chunks, "chat.completion", ("system_fingerprint", "service_tier"))
    answer["choices"] = [_chat_choice(choices[i]) for i in sorted(choices)]
    return _with_choices(answer)


def _add_delta(choice: _ChatChoice, delta: Json) -> None:
    delta = {key: value for key, value in delta.items() if value is not None}
    if not delta.keys() <= DELTA_KEYS:
        raise Unstorable(f"a delta the cache cannot replay: {sorted(delta.keys() - DELTA_KEYS)}")
    choice.content.append(_text(delta.get("content")))
    choice.refusal.append(_text(delta.get("refusal")))
    choice.annotations.extend(_list(delta.get("annotations", [])))
    for call in _list(delta.get("tool_calls", [])):
        _add_tool_call(choice.tool_calls, _dict(call))
    if "function_call" in delta:
        choice.function_call = _add_function(choice.function_call, delta["function_call"])


def _add_tool_call(calls: dict[int, Json], part: Json) -> None:
    if not part.keys() <= TOOL_CALL_KEYS or part.get("type") not in (None, "function"):
        raise Unstorable("a tool call that is not a function call")
    index = _int(part.get("index"))
    call = calls.setdefault(index, {"id": None, "type": "function", "function": None})
    call["id"] = call["id"] or _text(part.get("id")) or None
    call["function"] = _add_function(call["function"], part.get("function") or {})


def _add_function(function: Json | None, part: Any) -> Json:
    """A function call's name and arguments, each concatenated over the chunks."""
    function = function or {"name": "", "arguments": ""}
    part = _dict(part)
    return {key: function[key] + _text(part.get(key)) for key in ("name", "arguments")}


def _chat_choice(choice: _ChatChoice) -> Json:
    message: Json = {
        "role": "assistant",
        "content": "".join(choice.content) or None,
        "refusal": "".join(choice.refusal) or None,
    }
    if choice.tool_calls:
        message["tool_calls"] = [choice.tool_calls[i] for i in sorted(choice.tool_calls)]
    if choice.function_call:
        message["function_call"] = choice.function_call
    if choice.annotations:
        message["annotations"] = choice.annotations
    return {
        "index": choice.index,
        "message": message,
        "logprobs": choice.logprobs,
        "finish_reason": _finished(choice.finish_reason),
    }


# --- legacy completions ---


@dataclass
class _TextChoice:
    index: int
    text: list[str] = field(default_factory=list)
    logprobs: Json | None = None
    finish_reason: str | None = None


def _completion(chunks: list[Json]) -> Json:
    choices: dict[int, _TextChoice] = {}
    for chunk in chunks:
        for part in _choices(chunk):
            index = _int(part.get("index"))
            choice = choices.setdefault(index, _TextChoice(index))
            choice.text.append(_text(part.get("text")))
            choice.logprobs = _merged_logprobs(choice.logprobs, part, COMPLETION_LOGPROBS)
            choice.finish_reason = _finish(choice.finish_reason, part)
    answer = _header(chunks, "text_completion", ("system_fingerprint",))
    answer["choices"] = [
        {
            "text": "".join(c.text),
            "index": c.index,
            "logprobs": c.logprobs,
            "finish_reason": _finished(c.finish_reason),
        }
        for c in (choices[i] for i in sorted(choices))
    ]
    return _with_choices(answer)


# --- shared by both ---


def _choices(chunk: Json) -> list[Json]:
    """The chunk's choices; Azure's filter results ride along in them and are ignored."""
    return [_dict(choice) for choice in _list(chunk.get("choices") or [])]


def _header(chunks: list[Json], kind: str, optional: tuple[str, ...]) -> Json:
    """id, object, created and model, then the optional fields some chunk had a value for."""
    answer: Json = {"id": _first(chunks, "id"), "object": kind}
    answer |= {"created": _first(chunks, "created"), "model": _first(chunks, "model")}
    for key in optional:
        value = next((chunk[key] for chunk in chunks if chunk.get(key) is not None), None)
        if value is not None:
            answer[key] = value
    return answer


def _first(chunks: list[Json], key: str) -> Any:
    """The first non-empty value: Azure's prompt filter chunk comes first, with "" and 0."""
    values = [chunk[key] for chunk in chunks if key in chunk]
    if not values:
        raise Unstorable(f"no {key}")
    return next((value for value in values if value), values[0])


def _with_choices(answer: Json) -> Json:
    if not answer["choices"]:
        raise Unstorable("no choices")
    return answer


def _merged_logprobs(merged: Json | None, part: Json, keys: tuple[str, ...]) -> Json | None:
    """Each list concatenated over the chunks; a list no chunk had stays null."""
    logprobs = part.get("logprobs")
    if logprobs is None:
        return merged
    merged = merged if merged is not None else dict.fromkeys(keys)
    for key in keys:
        value = _dict(logprobs).get(key)
        if value is not None:
            merged[key] = merged[key] or []
            merged[key].extend(_list(value))
    return merged


def _finish(finish_reason: str | None, part: Json) -> str | None:
    reason = part.get("finish_reason")
    if reason is None:
        return finish_reason  # Azure's late content filter chunks come with none
    if reason not in FINISHED:
        raise Unstorable(f"finish_reason {reason!r}")
    return str(reason)


def _finished(finish_reason: str | None) -> str:
    if finish_reason is None:
        raise Unstorable("a choice without a finish_reason")
    return finish_reason


def _nested(usage: dict[str, int]) -> Json:
    """Flat counts back into the usage block: 'a.b' becomes {'a': {'b': ...}}."""
    nested: Json = {}
    for name, value in usage.items():
        *parents, leaf = name.split(".")
        block = nested
        for parent in parents:
            block = block.setdefault(parent, {})
        block[leaf] = value
    return nested


def _nonempty_list(value: Any) -> TypeGuard[list[Any]]:
    return isinstance(value, list) and bool(value)


def _dict(value: Any) -> Json:
    if not isinstance(value, dict):
        raise Unstorable("not an object")
    return value


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise Unstorable("not a list")
    return value


def _text(value: Any) -> str:
    """A piece of text; a missing or null one is empty."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Unstorable("not a string")
    return value


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise Unstorable("not an index")
    return value
