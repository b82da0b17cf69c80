"""The image generation operation (`/images/generations`): validation, the answer's JSON and
the one tiny PNG every image is, as base64 or at a `/_sim/images/` URL the simulator serves."""

from __future__ import annotations

import base64
import json
import struct
import time
import uuid
import zlib
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from . import content, errors

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SIDE = 8  # pixels: an 8x8 RGB checkerboard
# The route serving an answer's `url`; any id of this form answers the same PNG.
IMAGE_ROUTE = "/_sim/images/{image_id:img_[0-9a-f]{32}}.png"
# gpt-image-1's output tokens per image, whatever its size and quality (1024x1024 low's count).
GPT_IMAGE_OUTPUT_TOKENS = 272


def _chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data and the CRC of type and data."""
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _pixel(x: int, y: int) -> bytes:
    return b"\x10\xa3\x7f" if (x + y) % 2 else b"\xf2\xf2\xf2"


def _png() -> bytes:
    """A minimal valid PNG: 8-bit RGB, no interlace, each row with filter type 0."""
    header = struct.pack(">IIBBBBB", _SIDE, _SIDE, 8, 2, 0, 0, 0)
    rows = b"".join(b"\x00" + b"".join(_pixel(x, y) for x in range(_SIDE)) for y in range(_SIDE))
    return (
        _SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows, 9))
        + _chunk(b"IEND", b"")
    )


PNG = _png()
PNG_BASE64 = base64.b64encode(PNG).decode()


@dataclass(frozen=True, slots=True)
class ImageModel:
    """What one image model accepts."""

    sizes: tuple[str, ...]
    qualities: tuple[str, ...]
    max_n: int
    max_prompt: int  # characters
    urls: bool  # `response_format: "url"` is accepted (and the default)


_MODELS = {
    "dall-e-2": ImageModel(("256x256", "512x512", "1024x1024"), ("standard",), 10, 1000, True),
    "dall-e-3": ImageModel(
        ("1024x1024", "1792x1024", "1024x1792"), ("standard", "hd"), 1, 4000, True
    ),
    "gpt-image-1": ImageModel(
        ("1024x1024", "1536x1024", "1024x1536"), ("low", "medium", "high"), 10, 32000, False
    ),
}
# The model of a request naming none, as OpenAI's default.
DEFAULT_MODEL = "dall-e-2"
_MAX_N = 10


@dataclass(frozen=True, slots=True)
class ImageRequest:
    prompt: str
    n: int
    as_url: bool


def _prompt(body: dict[str, Any], spec: ImageModel) -> str:
    prompt = body.get("prompt")
    if prompt is None:
        raise errors.bad_request("Missing required parameter: 'prompt'.", "prompt")
    if not isinstance(prompt, str) or not prompt:
        raise errors.bad_request("'prompt' must be a non-empty string", "prompt")
    if len(prompt) > spec.max_prompt:
        message = (
            "Invalid 'prompt': string too long. Expected a string with maximum length "
            f"{spec.max_prompt}, but got a string with length {len(prompt)} instead."
        )
        raise errors.bad_request(message, "prompt", "string_above_max_length")
    return prompt


def _n(body: dict[str, Any], spec: ImageModel) -> int:
    n = body.get("n")
    if n is None:
        return 1
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= _MAX_N:
        raise errors.bad_request(f"'n' must be an integer between 1 and {_MAX_N}", "n")
    if n > spec.max_n:
        raise errors.bad_request("You must provide n=1 for this model.")
    return n


def _check_choice(body: dict[str, Any], name: str, allowed: tuple[str, ...]) -> None:
    value = body.get(name)
    if value is None or value == "auto" or value in allowed:
        return
    if name == "size" and isinstance(value, str):
        raise errors.bad_request("The size is not supported by this model.", None, "invalid_size")
    message = f"Invalid value: {json.dumps(value)}. Supported values are: {', '.join(allowed)}."
    raise errors.bad_request(message, name, "invalid_value")


def _as_url(body: dict[str, Any], model: str, spec: ImageModel) -> bool:
    value = body.get("response_format")
    if value is None:
        return spec.urls
    if value not in ("url", "b64_json"):
        message = "'response_format' must be one of 'url' or 'b64_json'"
        raise errors.bad_request(message, "response_format")
    if value == "url" and not spec.urls:
        message = f"The 'url' response_format is not supported by {model}; it answers b64_json."
        raise errors.bad_request(message, "response_format")
    return bool(value == "url")


def parse_request(body: dict[str, Any], model: str) -> ImageRequest:
    """Validate an image generation request (raises ApiError as OpenAI answers)."""
    spec = _MODELS[model]
    if body.get("stream") is True:
        message = "Streamed image generation is not supported by this simulator."
        raise errors.bad_request(message, "stream")
    if body.get("user") is not None and not isinstance(body["user"], str):
        raise errors.bad_request("'user' must be a string", "user")
    request = ImageRequest(_prompt(body, spec), _n(body, spec), _as_url(body, model, spec))
    _check_choice(body, "size", spec.sizes)
    _check_choice(body, "quality", spec.qualities)
    return request


def _item(request: ImageRequest, origin: str) -> dict[str, Any]:
    if request.as_url:
        url = f"{origin}/_sim/images/img_{uuid.uuid4().hex}.png"
        return {"url": url, "revised_prompt": request.prompt}
    return {"b64_json": PNG_BASE64, "revised_prompt": request.prompt}


def usage(prompt: str, n: int) -> dict[str, Any]:
    """gpt-image-1's usage: the prompt's text tokens in, 272 image tokens out per image."""
    tokens = content.count_tokens(prompt)
    output = GPT_IMAGE_OUTPUT_TOKENS * n
    return {
        "input_tokens": tokens,
        "input_tokens_details": {"text_tokens": tokens, "image_tokens": 0},
        "output_tokens": output,
        "total_tokens": tokens + output,
    }


def images_body(request: ImageRequest, model: str, origin: str) -> bytes:
    """The answer to ``request``; ``origin`` (scheme://host) prefixes each image's URL."""
    answer: dict[str, Any] = {
        "created": int(time.time()),
        "data": [_item(request, origin) for _ in range(request.n)],
    }
    if model == "gpt-image-1":
        answer["usage"] = usage(request.prompt, request.n)
    return json.dumps(answer, separators=(",", ":")).encode()


async def serve_image(request: web.Request) -> web.Response:
    """``GET /_sim/images/{id}.png``: the PNG an answer's `url` names."""
    return web.Response(body=PNG, content_type="image/png")
