"""A batch input file, checked line by line as it arrives, before the upstream sees any of it:
each line a request to an endpoint the gateway serves, every line naming one model the system
may use (OpenAI and Azure both run one model per batch), under the system's PII policy; and
rewritten to name the model's batch deployment. The rewritten file is spooled, never held."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from shared.errors import GatewayError, bad_request
from shared.gateway import Gateway
from shared.http.access import resolve_model
from shared.http.multipart import Part, Spool
from shared.http.policy import redact
from shared.registry.systems import Caller
from shared.routes import Operation
from shared.upstream.config import PublicModel

ENDPOINTS = {
    "/v1/chat/completions": Operation.CHAT,
    "/chat/completions": Operation.CHAT,
    "/v1/embeddings": Operation.EMBEDDINGS,
    "/embeddings": Operation.EMBEDDINGS,
    "/v1/completions": Operation.COMPLETIONS,
    "/completions": Operation.COMPLETIONS,
    "/v1/responses": Operation.RESPONSES,
    "/responses": Operation.RESPONSES,
}


@dataclass
class BatchFile:
    spool: Spool
    part: Part
    model: str = ""  # the public model every line names
    operation: Operation = Operation.CHAT
    deployment: str = ""  # the upstream that runs its lines
    lines: int = 0


async def checked_batch_file(
    gateway: Gateway, caller: Caller, part: Part, data: AsyncIterator[bytes]
) -> BatchFile:
    """The file's lines checked and rewritten into a spool; 400 or 403 naming the first line
    that fails (and why, never its content)."""
    checked = BatchFile(Spool(), part)
    model: PublicModel | None = None
    number = 0
    try:
        async for line in _lines(data, gateway.settings.max_body_bytes):
            number += 1
            if not line.strip():
                continue
            item = _request_line(line, number)
            model = model or _model_of(gateway, caller, item, number)
            _same_model(item, model, number)
            try:
                redact(caller, model, item["body"])
            except GatewayError as exc:
                raise _at_line(exc, number) from None
            item["body"]["model"] = model.batch.target if model.batch else model.name
            checked.spool.write(json.dumps(item, ensure_ascii=False).encode() + b"\n")
            checked.lines += 1
    except BaseException:
        checked.spool.close()
        raise
    if model is None or model.batch is None:
        checked.spool.close()
        raise bad_request("The batch file holds no requests.", "empty_file", "file")
    checked.spool.seal(part)
    checked.model, checked.operation = model.name, model.operation
    checked.deployment = model.batch.name
    return checked


def _request_line(line: bytes, number: int) -> dict[str, Any]:
    try:
        item = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        raise _line_error(number, "is not valid JSON") from None
    if not isinstance(item, dict) or not isinstance(item.get("body"), dict):
        raise _line_error(number, "needs 'custom_id', 'method', 'url' and a 'body' object")
    if not isinstance(item.get("custom_id"), str) or item.get("method") != "POST":
        raise _line_error(number, "needs a string 'custom_id' and 'method': 'POST'")
    if item.get("url") not in ENDPOINTS:
        raise _line_error(number, f"names a 'url' this gateway does not batch ({_known()})")
    return item


def _model_of(gateway: Gateway, caller: Caller, item: dict[str, Any], number: int) -> PublicModel:
    name = item["body"].get("model")
    if not isinstance(name, str) or not name:
        raise _line_error(number, "names no model in its body")
    try:
        model = resolve_model(gateway.config, caller, name, ENDPOINTS[item["url"]])
    except GatewayError as exc:
        raise _at_line(exc, number) from None
    if model.batch is None:
        raise _line_error(number, f"names model '{name}', which has no batch deployment here")
    return model


def _same_model(item: dict[str, Any], model: PublicModel, number: int) -> None:
    if item["body"].get("model") != model.name or ENDPOINTS[item["url"]] is not model.operation:
        message = (
            f"names another model or endpoint than the first line ('{model.name}'); "
            "a batch runs one model on one endpoint"
        )
        raise _line_error(number, message)


def _line_error(number: int, what: str) -> GatewayError:
    return bad_request(f"Line {number} of the batch file {what}.", "invalid_batch_line", "file")


def _at_line(exc: GatewayError, number: int) -> GatewayError:
    return GatewayError(
        exc.status, f"Line {number} of the batch file: {exc.message}", code=exc.code, param="file"
    )


def _known() -> str:
    return ", ".join(path for path in ENDPOINTS if path.startswith("/v1/"))


async def _lines(data: AsyncIterator[bytes], longest: int) -> AsyncIterator[bytes]:
    rest = b""
    async for piece in data:
        *whole, rest = (rest + piece).split(b"\n")
        for line in whole:
            yield line
        if len(rest) > longest:
            raise bad_request(
                f"A line of the batch file is longer than {longest} bytes.", "line_too_long", "file"
            )
    if rest:
        yield rest
