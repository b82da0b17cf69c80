"""The embeddings operation: input validation and a response spliced from cached vectors."""

from __future__ import annotations

import json
from typing import Any

from . import content, errors

EmbeddingInput = str | list[int]
_BAD_INPUT = "'$.input' is invalid. Please check the API reference."


def _is_tokens(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(t, int) and not isinstance(t, bool) for t in value)
    )


def parse_input(value: Any) -> list[EmbeddingInput]:
    """``input`` as a list of items: strings or token-id lists."""
    if isinstance(value, str) and value:
        return [value]
    if _is_tokens(value):
        return [value]
    if not isinstance(value, list) or not value:
        raise errors.bad_request(_BAD_INPUT, "input")
    if all(isinstance(v, str) and v for v in value) or all(_is_tokens(v) for v in value):
        return list(value)
    raise errors.bad_request(_BAD_INPUT, "input")


def parse_dimensions(body: dict[str, Any], model: str) -> int:
    native = content.EMBEDDING_DIMS[model]
    dimensions = body.get("dimensions")
    if dimensions is None:
        return native
    if model not in content.DIMENSIONS_ALLOWED:
        raise errors.bad_request("This model does not support specifying dimensions.", "dimensions")
    if isinstance(dimensions, bool) or not isinstance(dimensions, int):
        raise errors.bad_request("'dimensions' must be an integer", "dimensions")
    if not 1 <= dimensions <= native:
        message = f"'dimensions' must be between 1 and {native}"
        raise errors.bad_request(message, "dimensions")
    return dimensions


def parse_base64(body: dict[str, Any]) -> bool:
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        message = "'encoding_format' must be one of 'float' or 'base64'"
        raise errors.bad_request(message, "encoding_format")
    return bool(encoding == "base64")


def embeddings_body(body: dict[str, Any], model: str) -> bytes:
    """Validate the request and render the response (raises ApiError on bad input)."""
    items = parse_input(body.get("input"))
    dims = parse_dimensions(body, model)
    as_base64 = parse_base64(body)
    data = ",".join(
        f'{{"object":"embedding","index":{i},"embedding":'
        f"{content.embedding_json(item, dims, as_base64)}}}"
        for i, item in enumerate(items)
    )
    tokens = sum(content.item_tokens(item) for item in items)
    usage = json.dumps({"prompt_tokens": tokens, "total_tokens": tokens})
    text = f'{{"object":"list","data":[{data}],"model":{json.dumps(model)},"usage":{usage}}}'
    return text.encode()
