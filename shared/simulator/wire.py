"""JSON payloads of chat completions, stream chunks and model lists."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from .content import ALL_MODELS, CHAT_MODELS, COMPLETION_MODELS, EMBEDDING_MODELS

FINGERPRINT = "fp_simulated"
_SAFE = {"filtered": False, "severity": "safe"}
_HARM = {"hate": _SAFE, "self_harm": _SAFE, "sexual": _SAFE, "violence": _SAFE}
_PROMPT_RESULTS = {**_HARM, "jailbreak": {"filtered": False, "detected": False}}


def prompt_filter_results(prompts: int) -> list[dict[str, Any]]:
    """Azure's annotations of each prompt (chat has one; a completions call one per prompt)."""
    return [{"prompt_index": i, "content_filter_results": _PROMPT_RESULTS} for i in range(prompts)]


PROMPT_FILTER_RESULTS = prompt_filter_results(1)
_NOT_DETECTED = {"filtered": False, "detected": False}
CHOICE_FILTER_RESULTS = {
    **_HARM,
    "protected_material_text": _NOT_DETECTED,
    "protected_material_code": _NOT_DETECTED,
}


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def new_completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex[:29]


@dataclass(frozen=True, slots=True)
class ChatReply:
    """Everything needed to render one chat completion, streamed or not."""

    completion_id: str
    created: int
    model: str
    text_pieces: list[str]
    finish_reason: str
    n: int
    prompt_tokens: int
    azure: bool
    include_usage: bool

    @property
    def completion_tokens(self) -> int:
        return len(self.text_pieces) * self.n

    def usage(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }


def completion_body(reply: ChatReply) -> bytes:
    text = " ".join(reply.text_pieces)
    choices = []
    for index in range(reply.n):
        message: dict[str, Any] = {
            "role": "assistant",
            "content": text,
            "refusal": None,
            "annotations": [],
        }
        choice: dict[str, Any] = {
            "index": index,
            "message": message,
            "logprobs": None,
            "finish_reason": reply.finish_reason,
        }
        if reply.azure:
            choice["content_filter_results"] = CHOICE_FILTER_RESULTS
        choices.append(choice)
    body: dict[str, Any] = {
        "id": reply.completion_id,
        "object": "chat.completion",
        "created": reply.created,
        "model": reply.model,
        "choices": choices,
        "usage": reply.usage(),
        "system_fingerprint": FINGERPRINT,
    }
    if reply.azure:
        body["prompt_filter_results"] = PROMPT_FILTER_RESULTS
    else:
        body["service_tier"] = "default"
    return dumps(body).encode()


def frame(obj: Any) -> bytes:
    """One server-sent event carrying ``obj``."""
    return b"data: " + dumps(obj).encode() + b"\n\n"


DONE_FRAME = b"data: [DONE]\n\n"
# A string no real content contains; its JSON form marks where a token goes in a template.
SLOT = "\x00"
_SLOT_JSON = json.dumps(SLOT)


def slot_template(chunk: Any) -> tuple[bytes, bytes]:
    """The frame of ``chunk`` split around its one ``SLOT`` string: a token's JSON goes between."""
    prefix, suffix = dumps(chunk).split(_SLOT_JSON)
    return b"data: " + prefix.encode(), suffix.encode() + b"\n\n"


class ChunkEncoder:
    """Renders the frames of one stream; token frames come from precomputed templates."""

    def __init__(self, reply: ChatReply) -> None:
        self._reply = reply
        self._templates = [self._template(i) for i in range(reply.n)]

    def _chunk(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        reply = self._reply
        chunk: dict[str, Any] = {
            "id": reply.completion_id,
            "object": "chat.completion.chunk",
            "created": reply.created,
            "model": reply.model,
            "system_fingerprint": FINGERPRINT,
            "choices": choices,
        }
        if reply.include_usage:
            chunk["usage"] = None
        return chunk

    def _choice(
        self, index: int, delta: dict[str, Any], finish: str | None = None, filtered: bool = False
    ) -> dict[str, Any]:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        if self._reply.azure:
            choice["content_filter_results"] = CHOICE_FILTER_RESULTS if filtered else {}
        return choice

    def _template(self, index: int) -> tuple[bytes, bytes]:
        return slot_template(self._chunk([self._choice(index, {"content": SLOT}, filtered=True)]))

    def azure_prompt_filter(self) -> bytes:
        chunk: dict[str, Any] = {
            "id": "",
            "object": "",
            "created": 0,
            "model": "",
            "prompt_filter_results": PROMPT_FILTER_RESULTS,
            "choices": [],
        }
        if self._reply.include_usage:
            chunk["usage"] = None
        return frame(chunk)

    def role(self, index: int) -> bytes:
        delta = {"role": "assistant", "content": "", "refusal": None}
        return frame(self._chunk([self._choice(index, delta)]))

    def token(self, index: int, text: str) -> bytes:
        prefix, suffix = self._templates[index]
        return prefix + json.dumps(text).encode() + suffix

    def finish(self, index: int) -> bytes:
        return frame(self._chunk([self._choice(index, {}, self._reply.finish_reason)]))

    def usage(self) -> bytes:
        chunk = self._chunk([])
        chunk["usage"] = self._reply.usage()
        return frame(chunk)


_CREATED = int(time.time())


def _openai_models() -> bytes:
    data = [
        {"id": model, "object": "model", "created": _CREATED, "owned_by": "system"}
        for model in sorted(ALL_MODELS)
    ]
    return dumps({"object": "list", "data": data}).encode()


def _azure_models() -> bytes:
    data = []
    for model in sorted(ALL_MODELS):
        capabilities = {
            "fine_tune": False,
            "inference": True,
            "completion": model in COMPLETION_MODELS,
            "chat_completion": model in CHAT_MODELS,
            "embeddings": model in EMBEDDING_MODELS,
        }
        data.append(
            {
                "id": model,
                "object": "model",
                "status": "succeeded",
                "created_at": _CREATED,
                "updated_at": _CREATED,
                "capabilities": capabilities,
                "lifecycle_status": "generally-available",
            }
        )
    return dumps({"object": "list", "data": data}).encode()


OPENAI_MODELS_BODY = _openai_models()
AZURE_MODELS_BODY = _azure_models()
