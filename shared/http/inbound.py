"""Reading what a client sent: its key, its request id, its JSON body (checked as body.py says
before anything else reads it), its model name."""

from __future__ import annotations

import json
import os
import re
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request

from shared.errors import GatewayError, bad_request, unauthorized
from shared.http.body import check_structure, too_deep

MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id_of(request: Request) -> str:
    given = request.headers.get("x-request-id", "")
    return given if REQUEST_ID.match(given) else f"req_{os.urandom(16).hex()}"


def presented_key(request: Request) -> str:
    key = request.headers.get("api-key")
    if key is None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        key = token.strip() if scheme.lower() == "bearer" else None
    if not key:
        raise unauthorized(
            "Missing gateway key: send it in the 'api-key' header or as "
            "'Authorization: Bearer <key>'.",
            code="missing_api_key",
        )
    return key.strip()


async def read_json_body(request: Request, limit: int) -> dict[str, Any]:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise bad_request("The request body is not valid JSON.", code="invalid_json") from None
    except RecursionError:
        raise too_deep() from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.", code="invalid_json")
    check_structure(raw, body)
    return body


def checked_model_name(name: Any, param: str = "model") -> str:
    if name is None or name == "":
        raise bad_request("You must provide a model parameter.", code="missing_model", param=param)
    if not isinstance(name, str) or not MODEL_NAME.match(name) or ".." in name:
        raise bad_request(
            "Invalid model name: use letters, digits, '.', '_', ':' or '-' (at most 128).",
            code="invalid_model_name",
            param=param,
        )
    return name


def with_client_query(url: str, request: Request, drop: tuple[str, ...] = ()) -> str:
    """The client's query (paging, filters) on the upstream URL, never its api-version."""
    extra = [
        (k, v)
        for k, v in request.query_params.multi_items()
        if k != "api-version" and k not in drop
    ]
    if not extra:
        return url
    return url + ("&" if "?" in url else "?") + urlencode(extra)


def _too_large(limit: int) -> GatewayError:
    return GatewayError(
        413,
        f"The request body is larger than this gateway accepts ({limit} bytes).",
        code="request_too_large",
    )
