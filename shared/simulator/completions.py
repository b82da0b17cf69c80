"""The legacy completions operation (`POST .../completions`): its prompt, its answer as one
`text_completion` object, and the frames of its stream (the same object, one token a frame)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from . import content, errors
from .wire import CHOICE_FILTER_RESULTS, SLOT, dumps, frame, prompt_filter_results, slot_template

PromptItem = str | list[int]
# OpenAI's default when a completions call gives no max_tokens (chat has no such default).
DEFAULT_MAX_TOKENS = 16
_BAD_PROMPT = (
    "'prompt' must be a string, an array of strings, an array of token ids or an array of "
    "arrays of token ids"
)


def _is_tokens(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(t, int) and not isinstance(t, bool) for t in value)
    )


def _one_kind(values: list[Any]) -> bool:
    """All strings, or all token-id lists (a batch never mixes them)."""
    return all(isinstance(v, str) for v in values) or all(_is_tokens(v) for v in values)


def parse_prompt(value: Any) -> list[PromptItem]:
    """``prompt`` as a list of prompts: strings or token-id lists."""
    if value is None:
        raise errors.bad_request("Missing required parameter: 'prompt'.", "prompt")
    if isinstance(value, str) or _is_tokens(value):
        return [value]
    if isinstance(value, list) and value and _one_kind(value):
        return list(value)
    raise errors.bad_request(_BAD_PROMPT, "prompt")


def new_completion_id() -> str:
    return "cmpl-" + uuid.uuid4().hex[:29]


@dataclass(frozen=True, slots=True)
class CompletionReply:
    """Everything needed to render one completions answer, streamed or not."""

    completion_id: str
    created: int
    model: str
    choices: list[list[str]]  # each choice's tokens, by choice index
    prompts: int
    finish_reason: str
    prompt_tokens: int
    azure: bool
    include_usage: bool

    @property
    def length(self) -> int:
        """Tokens per choice: every choice has the same number."""
        return len(self.choices[0])

    def usage(self) -> dict[str, Any]:
        completion = sum(len(pieces) for pieces in self.choices)
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": self.prompt_tokens + completion,
        }


def completion_reply(
    prompts: list[PromptItem],
    *,
    model: str,
    n: int,
    length: int,
    truncated: bool,
    azure: bool,
    include_usage: bool,
    created: int,
) -> CompletionReply:
    """The answer to ``prompts``: ``n`` choices per prompt, prompt-major, ``length`` tokens each."""
    per_prompt = [content.reply_pieces(content.item_text(p), length) for p in prompts]
    return CompletionReply(
        completion_id=new_completion_id(),
        created=created,
        model=model,
        choices=[pieces for pieces in per_prompt for _ in range(n)],
        prompts=len(prompts),
        finish_reason="length" if truncated else "stop",
        prompt_tokens=sum(content.item_tokens(p) for p in prompts),
        azure=azure,
        include_usage=include_usage,
    )


def _choice(
    reply: CompletionReply, index: int, text: str, finish: str | None, filtered: bool = True
) -> dict[str, Any]:
    choice: dict[str, Any] = {
        "text": text,
        "index": index,
        "logprobs": None,
        "finish_reason": finish,
    }
    if reply.azure:  # as in chat streams, a chunk without text has empty annotations
        choice["content_filter_results"] = CHOICE_FILTER_RESULTS if filtered else {}
    return choice


def _envelope(reply: CompletionReply, choices: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": reply.completion_id,
        "object": "text_completion",
        "created": reply.created,
        "model": reply.model,
        "choices": choices,
    }


def text_completion_body(reply: CompletionReply) -> bytes:
    choices = [
        _choice(reply, index, " ".join(pieces), reply.finish_reason)
        for index, pieces in enumerate(reply.choices)
    ]
    body = _envelope(reply, choices)
    if reply.azure:
        body["prompt_filter_results"] = prompt_filter_results(reply.prompts)
    body["usage"] = reply.usage()
    return dumps(body).encode()


class CompletionChunkEncoder:
    """Renders the frames of one completions stream; token frames come from templates."""

    def __init__(self, reply: CompletionReply) -> None:
        self._reply = reply
        self._templates = [
            slot_template(self._chunk([_choice(reply, index, SLOT, None)]))
            for index in range(len(reply.choices))
        ]

    def _chunk(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        chunk = _envelope(self._reply, choices)
        if self._reply.include_usage:
            chunk["usage"] = None  # as chat: every chunk but the last has a null usage
        return chunk

    def azure_prompt_filter(self) -> bytes:
        chunk: dict[str, Any] = {
            "id": "",
            "object": "",
            "created": 0,
            "model": "",
            "prompt_filter_results": prompt_filter_results(self._reply.prompts),
            "choices": [],
        }
        if self._reply.include_usage:
            chunk["usage"] = None
        return frame(chunk)

    def token(self, index: int, text: str) -> bytes:
        prefix, suffix = self._templates[index]
        return prefix + json.dumps(text).encode() + suffix

    def finish(self, index: int) -> bytes:
        choice = _choice(self._reply, index, "", self._reply.finish_reason, filtered=False)
        return frame(self._chunk([choice]))

    def usage(self) -> bytes:
        chunk = self._chunk([])
        chunk["usage"] = self._reply.usage()
        return frame(chunk)
