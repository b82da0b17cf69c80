"""Deterministic content: model catalog, token counting, reply text and embedding vectors."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import math
import random
import re
import sys
from array import array
from collections.abc import Iterable
from typing import Any

# Azure AI Foundry catalogue models. Like an AI Services resource, the simulator serves them on
# every path (Foundry's /models/..., Azure's deployments, OpenAI's /v1) and they serve there.
FOUNDRY_CHAT_MODELS = frozenset({"DeepSeek-R1", "Llama-3.3-70B-Instruct", "Mistral-Large-2411"})
FOUNDRY_EMBEDDING_MODELS = frozenset({"Cohere-embed-v3-multilingual"})
CHAT_MODELS = frozenset(
    {"gpt-4o", "gpt-4-turbo", "gpt-35-turbo", "gpt-35-turbo-16k", "gpt-35-turbo-0613"}
    | FOUNDRY_CHAT_MODELS
)
EMBEDDING_MODELS = (
    frozenset({"text-embedding-3-small", "text-embedding-ada-002"}) | FOUNDRY_EMBEDDING_MODELS
)
# The legacy completions endpoint's models (Azure and OpenAI spellings).
COMPLETION_MODELS = frozenset(
    {"gpt-35-turbo-instruct", "gpt-3.5-turbo-instruct", "davinci-002", "babbage-002"}
)
# The image generation models (`/images/generations`).
IMAGE_MODELS = frozenset({"dall-e-3", "dall-e-2", "gpt-image-1"})
# Audio: whisper-1 transcribes and translates, tts-1 speaks.
TRANSCRIPTION_MODELS = frozenset({"whisper-1"})
SPEECH_MODELS = frozenset({"tts-1"})
ALL_MODELS = (
    CHAT_MODELS
    | EMBEDDING_MODELS
    | COMPLETION_MODELS
    | IMAGE_MODELS
    | TRANSCRIPTION_MODELS
    | SPEECH_MODELS
)
# The models each operation answers for; any other known model is the wrong operation's.
MODELS_BY_OPERATION = {
    "chat": CHAT_MODELS,
    "responses": CHAT_MODELS,
    "input_tokens": CHAT_MODELS,
    "embeddings": EMBEDDING_MODELS,
    "completions": COMPLETION_MODELS,
    "images": IMAGE_MODELS,
    "image_edits": IMAGE_MODELS,
    "transcriptions": TRANSCRIPTION_MODELS,
    "translations": TRANSCRIPTION_MODELS,
    "speech": SPEECH_MODELS,
}
EMBEDDING_DIMS = {
    "text-embedding-3-small": 1536,
    "text-embedding-ada-002": 1536,
    "Cohere-embed-v3-multilingual": 1024,
}
# Only text-embedding-3-* accept the `dimensions` parameter.
DIMENSIONS_ALLOWED = frozenset({"text-embedding-3-small"})

# OpenAI answers with the resolved snapshot name; Azure with the base model name.
_OPENAI_SNAPSHOTS = {"gpt-4o": "gpt-4o-2024-08-06", "gpt-4-turbo": "gpt-4-turbo-2024-04-09"}


def response_model(model: str, azure: bool) -> str:
    return model if azure else _OPENAI_SNAPSHOTS.get(model, model)


_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_TOKEN_RE = re.compile(f"[{_CJK}]|[^\\s{_CJK}]+")


def count_tokens(text: str) -> int:
    """Whitespace-separated words plus one token per CJK character (a tiktoken stand-in)."""
    return len(_TOKEN_RE.findall(text))


def split_tokens(text: str) -> list[str]:
    """The pieces ``count_tokens`` counts, in order."""
    return _TOKEN_RE.findall(text)


def _content_tokens(value: Any) -> int:
    if isinstance(value, str):
        return count_tokens(value)
    if isinstance(value, list):
        return sum(
            count_tokens(part["text"])
            for part in value
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return 0


def prompt_tokens(messages: Iterable[dict[str, Any]]) -> int:
    """The cookbook formula: per message 3 + tokens of every value (+1 for `name`), plus 3."""
    total = 3
    for message in messages:
        total += 3
        for key, value in message.items():
            total += _content_tokens(value) + (1 if key == "name" else 0)
    return total


def message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict)]
        return " ".join(p for p in parts if isinstance(p, str))
    return ""


def last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return message_text(message)
    return ""


_FILLER = (
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "et",
    "dolore",
    "magna",
    "aliqua",
)


def reply_pieces(user_text: str, length: int) -> list[str]:
    """Exactly ``length`` tokens: "Echo:", the user's tokens, then filler words."""
    pieces = ["Echo:", *split_tokens(user_text)][:length]
    missing = length - len(pieces)
    if missing > 0:
        pieces.extend(_FILLER[i % len(_FILLER)] for i in range(missing))
    return pieces


# Embeddings come from a bank of precomputed unit vectors chosen by a stable hash of the
# input, so a request costs a dict lookup and a string join, not vector maths.
_BUCKETS = 1024


def _bucket(text: str) -> int:
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % _BUCKETS


@functools.lru_cache(maxsize=4096)
def _vector(bucket: int, dims: int) -> tuple[str, str]:
    """(JSON float list, base64 of little-endian float32) for one bank entry."""
    rng = random.Random(bucket * 100_003 + dims)
    raw = [rng.gauss(0.0, 1.0) for _ in range(dims)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    floats = array("f", (x / norm for x in raw))
    little_endian = array("f", floats)
    if sys.byteorder == "big":  # pragma: no cover
        little_endian.byteswap()
    return json.dumps(floats.tolist()), base64.b64encode(little_endian.tobytes()).decode()


def item_text(item: str | list[int]) -> str:
    """One embeddings input or completions prompt as text (token ids as numbers)."""
    return item if isinstance(item, str) else " ".join(map(str, item))


def embedding_json(item: str | list[int], dims: int, base64_format: bool) -> str:
    """The JSON text of one `embedding` value."""
    as_json, as_b64 = _vector(_bucket(item_text(item)), dims)
    return f'"{as_b64}"' if base64_format else as_json


def item_tokens(item: str | list[int]) -> int:
    """The tokens of one embeddings input or completions prompt: a token-id list counts its ids."""
    return count_tokens(item) if isinstance(item, str) else len(item)
