"""What of an upstream's answer may reach a client: never the upstream key it was sent (an
error page or a proxy in front of the upstream may echo request headers), and an error body
only when it is an API error; any other error body becomes the gateway's own.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from shared.errors import GatewayError

# A run of the key this long, from its start, is a leak; shorter runs are chance (or a public
# prefix such as "sk-proj-").
MIN_FRAGMENT = 12
REDACTED = b"[redacted]"
_BODY_HEADERS = frozenset({"content-type", "content-length", "content-encoding"})


def without_key(data: bytes, key: str) -> bytes:
    """`data` with every run of the key (from its first MIN_FRAGMENT characters on) replaced."""
    secret = key.encode()
    probe = secret[:MIN_FRAGMENT]
    if not probe or probe not in data:
        return data
    out: list[bytes] = []
    start = 0
    while (found := data.find(probe, start)) != -1:
        end = found + len(probe)
        matched = len(probe)
        while end < len(data) and matched < len(secret) and data[end] == secret[matched]:
            end, matched = end + 1, matched + 1
        out += [data[start:found], REDACTED]
        start = end
    out.append(data[start:])
    return b"".join(out)


def headers_without_key(headers: dict[str, str], key: str) -> dict[str, str]:
    probe = key[:MIN_FRAGMENT]
    if not probe or not any(probe in value for value in headers.values()):
        return headers
    return {
        name: without_key(value.encode(), key).decode() if probe in value else value
        for name, value in headers.items()
    }


def error_answer(status: int, body: bytes, key: str, headers: dict[str, str]) -> Response:
    """An upstream's error as the client gets it: an API error (OpenAI's or Azure's shape, a
    content filter's too) with any key run removed, or else the gateway's own error naming the
    upstream's status; the upstream's request id stays in `x-upstream-request-id`."""
    headers = headers_without_key(headers, key)
    if _is_api_error(body):
        return Response(content=without_key(body, key), status_code=status, headers=headers)
    headers = {k: v for k, v in headers.items() if k.lower() not in _BODY_HEADERS}
    error = GatewayError(
        status,
        f"The upstream deployment answered HTTP {status} without an API error.",
        type="upstream_error",
        code="upstream_error",
    )
    return error.to_response(headers)


def _is_api_error(body: bytes) -> bool:
    try:
        document: Any = json.loads(body)
    except (ValueError, RecursionError):
        return False
    error = document.get("error") if isinstance(document, dict) else None
    return isinstance(error, dict) and isinstance(error.get("message"), str)
