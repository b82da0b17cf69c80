"""Everything the gateway learns about one request, turned into exactly one usage record and
exactly one settlement of its token reservation, however the request ends."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from shared.limits.limiter import Limiter, Reservation
from shared.limits.tokens import (
    chat_prompt_tokens,
    completion_allowance,
    embedding_input_tokens,
    responses_input_tokens,
)
from shared.routes import Operation
from shared.usage.content import ContentCapture
from shared.usage.record import UsageRecord
from shared.usage.stream_tap import UsageTap
from shared.usage.telemetry import record_request

# Without a usage block, delivered text is counted at this many characters per token: low
# enough to over-count English (about 4) and close for CJK (about 1 to 1.5).
CHARS_PER_TOKEN = 3


class RecordSink(Protocol):
    def add(self, record: UsageRecord) -> None: ...


Price = Callable[[str, int, int], float]  # (model, prompt tokens, completion tokens) -> cost


def estimate(
    body: dict[str, Any], operation: Operation, tokenizer_model: str, default: int
) -> tuple[int, int]:
    """(prompt tokens, tokens to reserve): the prompt plus what the completion may use."""
    if operation is Operation.EMBEDDINGS:
        prompt = embedding_input_tokens(body, tokenizer_model)
        return prompt, prompt
    if operation is Operation.RESPONSES:
        prompt = responses_input_tokens(body, tokenizer_model)
        return prompt, prompt + completion_allowance(body, default)
    prompt = chat_prompt_tokens(body, tokenizer_model)
    return prompt, prompt + completion_allowance(body, default)


class Account:
    def __init__(
        self,
        sink: RecordSink,
        price: Price,
        request_id: str,
        route: str,
        operation: str,
        client_ip: str,
    ) -> None:
        self._sink, self._price = sink, price
        self._started = time.perf_counter()
        self._time = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self.request_id, self.route, self.operation, self.client_ip = (
            request_id,
            route,
            operation,
            client_ip,
        )
        self.system = self.key_id = self.model = "-"
        self.stream = False
        self.deployment = ""
        self.attempts = 0
        self.ttfb_ms = 0.0
        self._limiter: Limiter | None = None
        self.reservation: Reservation | None = None
        self._prompt_estimate: Callable[[], int] = lambda: 0
        self._closed = False
        self.content: ContentCapture | None = None  # only for systems that opted in
        self.response_id = ""  # the stored response a Responses API call created
        self._bind: Callable[[str, str, str], None] | None = None

    def bind_responses(self, bind: Callable[[str, str, str], None]) -> None:
        """Bind the response this call creates, (id, system, deployment), as soon as it is seen."""
        self._bind = bind

    def response_seen(self, response_id: str) -> None:
        if self.response_id or not response_id:
            return
        self.response_id = response_id
        if self._bind is not None and self.deployment:
            self._bind(response_id, self.system, self.deployment)

    def reserved(self, limiter: Limiter, reservation: Reservation | None) -> None:
        self._limiter, self.reservation = limiter, reservation

    def estimate_prompt_with(self, count: Callable[[], int]) -> None:
        """How to count the prompt if the upstream never says (counted only then)."""
        self._prompt_estimate = count

    def first_byte(self) -> None:
        if not self.ttfb_ms:
            self.ttfb_ms = (time.perf_counter() - self._started) * 1000

    def close_error(self, status: int, code: str | None) -> None:
        """An answer with no tokens: an error, or a success that uses none (a model list)."""
        self._close(status, code or "", 0, 0, disconnected=False)

    def close_disconnected(self) -> None:
        """The client left before its request had arrived whole."""
        self._close(499, "client_disconnected", 0, 0, disconnected=True)

    def close_body(self, status: int, body: bytes) -> None:
        usage: dict[str, int] = {}
        if status == 200 and self._bind is not None:  # its id binds it: read the answer once
            answer = _object(body)
            response_id = answer.get("id")
            self.response_seen(response_id if isinstance(response_id, str) else "")
            usage = _counts(answer["usage"]) if isinstance(answer.get("usage"), dict) else {}
        elif status == 200:
            usage = _usage(body)
        prompt, completion = _tokens(usage)
        self._close(
            status, "", prompt, completion, disconnected=False, reported=bool(usage), text=body
        )

    def close_stream(self, tap: UsageTap, error_code: str, disconnected: bool) -> None:
        self.response_seen(tap.response_id or "")
        usage = tap.usage or {}
        if "total_tokens" in usage:
            prompt, completion = _tokens(usage)
        else:  # broken or cut short: settle on what was delivered
            counted = math.ceil(tap.completion_text_chars / CHARS_PER_TOKEN)
            prompt, completion = self._prompt_estimate(), max(tap.completion_pieces, counted)
        text = b"".join(self.content.parts) if self.content is not None else b""
        self._close(200, error_code, prompt, completion, disconnected=disconnected, text=text)

    def _close(
        self,
        status: int,
        error_code: str,
        prompt: int,
        completion: int,
        *,
        disconnected: bool,
        reported: bool = True,
        text: bytes = b"",
    ) -> None:
        if self._closed:
            return
        self._closed = True
        total = prompt + completion
        reserved = self.reservation.estimate if self.reservation else 0
        settled = total if reported or not self.reservation else reserved
        if self._limiter is not None:
            self._limiter.settle_soon(self.reservation, settled)
        record = UsageRecord(
            time=self._time,
            request_id=self.request_id,
            system=self.system,
            key_id=self.key_id,
            route=self.route,
            operation=self.operation,
            model=self.model,
            deployment=self.deployment,
            status=status,
            error_code=error_code,
            stream=self.stream,
            prompt_tokens=prompt,
            completion_tokens=completion,
            total_tokens=total,
            reserved_tokens=reserved,
            settled_tokens=settled if self.reservation else 0,
            cost=round(self._price(self.model, prompt, completion), 8) if total else 0.0,
            ttfb_ms=round(self.ttfb_ms, 3),
            total_ms=round((time.perf_counter() - self._started) * 1000, 3),
            attempts=self.attempts,
            client_ip=self.client_ip,
            client_disconnected=disconnected,
            response_id=self.response_id,
        )
        self._sink.add(record)
        record_request(record)
        if self.content is not None and text:
            self.content.write(self._time, self.request_id, self.system, self.model, text)


def _usage(body: bytes) -> dict[str, int]:
    """The answer's top-level `usage`. It comes at or near the end, so it is read from there
    when what follows it closes the answer's own object; anything else parses the whole answer."""
    found = _usage_near_end(body)
    if found is not None:
        return found
    usage = _object(body).get("usage")
    return _counts(usage) if isinstance(usage, dict) else {}


def _usage_near_end(body: bytes) -> dict[str, int] | None:
    at = body.rfind(b'"usage"')
    if at < 0 or len(body) - at > _TAIL_BYTES:
        return None
    try:
        rest = body[at + 7 :].decode("utf-8").lstrip()
        if not rest.startswith(":"):
            return None  # a string value "usage", not the key
        rest = rest[1:].lstrip()
        value, end = _DECODER.raw_decode(rest)
        # Top level only if the rest is the answer's remaining members and its closing brace:
        # had "usage" been nested, the rest would close more than one container.
        tail = rest[end:].lstrip().removeprefix(",")
        json.loads("{" + tail)
    except (ValueError, UnicodeDecodeError):
        return None
    return _counts(value) if isinstance(value, dict) else None


def _object(body: bytes) -> dict[str, Any]:
    """The answer as a JSON object, or an empty one when it is not one."""
    try:
        value = json.loads(body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _tokens(usage: dict[str, int]) -> tuple[int, int]:
    """(prompt, completion): chat and embeddings name them so, the Responses API input/output."""
    prompt = usage.get("prompt_tokens", usage.get("input_tokens", 0))
    return prompt, usage.get("completion_tokens", usage.get("output_tokens", 0))


def _counts(usage: dict[str, Any]) -> dict[str, int]:
    return {k: v for k, v in usage.items() if isinstance(v, int) and not isinstance(v, bool)}


_DECODER = json.JSONDecoder()
_TAIL_BYTES = 8192  # a usage block and the members after it: a few hundred bytes
