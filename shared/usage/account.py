"""Everything the gateway learns about one request, turned into exactly one usage record and
exactly one settlement of its token reservation, however the request ends."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from shared.guardrails.answers import AnswerGuard
from shared.guardrails.verdict import Verdict
from shared.limits.limiter import Limiter, Reservation
from shared.limits.plan import cost_units
from shared.limits.tokens import (
    chat_prompt_tokens,
    completion_allowance,
    completions_allowance,
    completions_prompt_tokens,
    embedding_input_tokens,
    responses_input_tokens,
)
from shared.routes import Operation
from shared.usage.background import UNFINISHED, Pending
from shared.usage.content import ContentCapture
from shared.usage.counts import NO_UNITS, Price, Tokens, Units, flat_counts, tokens_of
from shared.usage.record import RecordSink, UsageRecord, token_fields
from shared.usage.stream_tap import UsageTap
from shared.usage.telemetry import record_request

# Without a usage block, delivered text is counted at this many characters per token: low
# enough to over-count English (about 4) and close for CJK (about 1 to 1.5).
CHARS_PER_TOKEN = 3


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
    if operation is Operation.COMPLETIONS:
        prompt = completions_prompt_tokens(body, tokenizer_model)
        return prompt, prompt + completions_allowance(body)
    if operation is Operation.IMAGES:  # priced per image; tokens only where reported
        prompt = completions_prompt_tokens(body, tokenizer_model)
        return prompt, prompt
    if operation in _PER_UNIT:  # audio, speech and uploaded images: tokens only where reported
        return 0, 0
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
        self.error_code = ""  # as the record says, once closed
        self.cost: float | None = None  # as the record says, once closed
        self.currency = "USD"  # the price table's
        self.content: ContentCapture | None = None  # only for systems that opted in
        self.response_id = ""  # the stored response a Responses API call created
        self.units = NO_UNITS  # what it used that is priced per unit (images, audio, text)
        self.units_heard = NO_UNITS  # an upload's audio length, if its answer does not say
        self._bind: Callable[[str, str, str], None] | None = None
        self._hold: Callable[[str, Pending], None] | None = None
        self._on_end: Callable[[dict[str, Any]], None] | None = None
        self.cache = ""  # the response cache's part in the answer, as the record says
        # Given a 200 answer (a stream's delivered bytes with its usage), to keep for the cache.
        self.keep: Callable[[bytes, dict[str, int] | None], None] | None = None
        self._saved = (0, 0.0)  # a cache hit's: tokens and cost the kept answer had used
        self._delivered: list[bytes] | None = None
        self.guard: AnswerGuard | None = None  # the system's content policy, on answers
        self._checks: dict[str, str] = {}  # "prompt" / "answer" -> the checks that ran
        self._flags: dict[str, str] = {}  # "prompt" / "answer" -> what fired

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self._started) * 1000

    @property
    def started_at(self) -> str:
        """When the request began (ISO 8601 UTC), as its record says."""
        return self._time

    def bind_responses(self, bind: Callable[[str, str, str], None]) -> None:
        """Bind the response this call creates, (id, system, deployment), as soon as it is seen."""
        self._bind = bind

    def hold_background(self, hold: Callable[[str, Pending], None]) -> None:
        """A background response: if it is still running when this call ends, hand its record
        and reservation to `hold` (the background meter) instead of closing them."""
        self._hold = hold

    def on_response_end(self, seen: Callable[[dict[str, Any]], None]) -> None:
        """A resumed stream: tell `seen` how the response ended, if its end comes by."""
        self._on_end = seen

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

    def checked(self, direction: str, verdict: Verdict) -> None:
        """What a content check of the prompt or the answer did, for the record."""
        ran = ",".join(verdict.checks) + (",unavailable" if verdict.unavailable else "")
        self._checks[direction] = ran
        if verdict.blocked:
            self._flags[direction] = verdict.flags()

    def delivered(self) -> list[bytes] | None:
        """Where a stream's delivered bytes are kept, only when content logging or the cache
        needs them."""
        if self._delivered is None and (self.content is not None or self.keep is not None):
            self._delivered = []
        return self._delivered

    def first_byte(self) -> None:
        if not self.ttfb_ms:
            self.ttfb_ms = (time.perf_counter() - self._started) * 1000

    def close_error(self, status: int, code: str | None) -> None:
        """An answer with no tokens: an error, or a success that uses none (a model list)."""
        self._close(status, code or "", Tokens(), disconnected=False)

    def close_disconnected(self) -> None:
        """The client left before its request had arrived whole."""
        self._close(499, "client_disconnected", Tokens(), disconnected=True)

    def close_body(self, status: int, body: bytes) -> None:
        usage: dict[str, int] = {}
        if status == 200 and self.operation in _HEARD:
            usage = self._heard(body)
        elif status == 200 and (self._bind is not None or self.operation in _IMAGES):
            # Its id binds it, or its images are counted: the answer is read once, whole.
            answer = _object(body)
            usage = _usage_of(answer)
            if self._bind is None:
                data = answer.get("data")
                self.units = Units(images=len(data) if isinstance(data, list) else 0)
            else:
                response_id = answer.get("id")
                self.response_seen(response_id if isinstance(response_id, str) else "")
                if not usage and answer.get("status") in UNFINISHED and self._defer():
                    return
        elif status == 200:
            usage = _usage(body)
        if status == 200 and self.keep is not None:
            self.keep(body, None)
        self._close(
            status, "", tokens_of(usage), disconnected=False, reported=bool(usage), text=body
        )

    def close_withheld(self, status: int, code: str, body: bytes) -> None:
        """An answer made but not delivered (its content check could not be made): refused,
        and charged what the upstream says it used."""
        usage = _usage(body)
        self._close(status, code, tokens_of(usage), disconnected=False, reported=bool(usage))

    def _heard(self, body: bytes) -> dict[str, int]:
        """A transcription's usage: tokens (gpt-4o-transcribe) or seconds (whisper), else the
        duration of a verbose answer, else the length of the audio as the gateway read it."""
        answer = _object(body) if body[:1] == b"{" else {}
        usage = _usage_of(answer)
        seconds: float | None = usage.pop("seconds", None)
        duration = answer.get("duration")
        if seconds is None and isinstance(duration, int | float) and not isinstance(duration, bool):
            seconds = float(duration)
        if seconds is not None:
            self.units = Units(audio_seconds=float(seconds))
        elif "total_tokens" not in usage:
            self.units = self.units_heard
        return usage

    def close_stream(self, tap: UsageTap, error_code: str, disconnected: bool) -> None:
        self.response_seen(tap.response_id or "")
        usage = tap.usage or {}
        if self._on_end is not None:  # a resumed stream generates nothing, but may tell an end
            if tap.final_status:
                self._on_end({"status": tap.final_status, "usage": usage or None})
            self._close(200, error_code, Tokens(), disconnected=disconnected)
            return
        if "total_tokens" in usage:
            tokens = tokens_of(usage)
        elif self._defer():  # a background response: the upstream goes on without us
            return
        else:  # broken or cut short: settle on what was delivered
            counted = math.ceil(tap.completion_text_chars / CHARS_PER_TOKEN)
            tokens = Tokens(self._prompt_estimate(), max(tap.completion_pieces, counted))
        text = b"".join(self._delivered) if self._delivered else b""
        if self.keep is not None and not error_code and not disconnected and tap.usage:
            self.keep(text, usage)
        self._close(200, error_code, tokens, disconnected=disconnected, text=text)

    def close_hit(self, usage: dict[str, int], text: bytes) -> None:
        """An answer replayed from the response cache: it used no tokens; the record says what
        the kept answer had used, and what that would have cost."""
        self.cache = "hit"
        saved = tokens_of(usage)
        self._saved = (saved.total, round(self._price(self.model, saved, NO_UNITS, False), 8))
        self.first_byte()
        self._close(200, "", Tokens(), disconnected=False, text=text)

    def cost_header(self) -> dict[str, str]:
        """`x-tollgate-cost`: what the answer cost, once the account has closed on it."""
        if self.cost is None:
            return {}
        return {"x-tollgate-cost": f"{self.cost:.8f} {self.currency}"}

    def stream_cost(self, tap: UsageTap) -> bytes:
        """A stream's closing SSE comment saying what it cost (SDKs skip comments), once its
        usage has come; nothing before."""
        usage = tap.usage or {}
        if "total_tokens" not in usage or self._on_end is not None:  # resumed: costs nothing
            return b""
        return cost_comment(self._price(self.model, tokens_of(usage), self.units, False), self)

    def hit_cost(self) -> bytes:
        """A replayed stream's closing comment: a hit costs nothing."""
        return cost_comment(0.0, self)

    def _defer(self) -> bool:
        """Hand a background response's record and reservation to the meter, to be finished
        when the response ends; its concurrency lease ends now, with the call."""
        if self._hold is None or not self.response_id or self._closed:
            return False
        self._closed = True
        reservation = self.reservation
        record = self._record(200, "", Tokens(), 0, False)
        pending = Pending(record, None, "", 0, True)
        if reservation is not None and self._limiter is not None:
            shared = self._limiter.end_lease_soon(reservation)
            pending = Pending(
                record,
                reservation.plan,
                reservation.rid,
                reservation.estimate,
                shared,
                reservation.cost,
            )
        self._hold(self.response_id, pending)
        return True

    def _close(
        self,
        status: int,
        error_code: str,
        tokens: Tokens,
        *,
        disconnected: bool,
        reported: bool = True,
        text: bytes = b"",
    ) -> None:
        if self._closed:
            return
        self._closed = True
        self.error_code = error_code
        if not 200 <= status < 300:  # units are charged only for what was answered
            self.units = NO_UNITS
        total = tokens.total
        reserved = self.reservation.estimate if self.reservation else 0
        settled = total if reported or not self.reservation else reserved
        record = self._record(status, error_code, tokens, settled, disconnected)
        if self._limiter is not None:  # budgets are charged what the record says, exactly
            self._limiter.settle_soon(self.reservation, settled, cost_units(record.cost))
        self.cost = record.cost
        self._sink.add(record)
        record_request(record)
        if self.content is not None and text:
            self.content.write(self._time, self.request_id, self.system, self.model, text)

    def _record(
        self, status: int, error_code: str, tokens: Tokens, settled: int, disconnected: bool
    ) -> UsageRecord:
        return UsageRecord(
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
            **token_fields(tokens),
            reserved_tokens=self.reservation.estimate if self.reservation else 0,
            settled_tokens=settled if self.reservation else 0,
            cost=round(self._price(self.model, tokens, self.units, False), 8)
            if tokens.total or self.units
            else 0.0,
            images=self.units.images,
            audio_seconds=self.units.audio_seconds,
            characters=self.units.characters,
            ttfb_ms=round(self.ttfb_ms, 3),
            total_ms=round((time.perf_counter() - self._started) * 1000, 3),
            attempts=self.attempts,
            client_ip=self.client_ip,
            client_disconnected=disconnected,
            response_id=self.response_id,
            cache=self.cache,
            saved_tokens=self._saved[0],
            saved_cost=self._saved[1],
            content_checks=";".join(f"{d}={c}" for d, c in self._checks.items()),
            content_flags=";".join(f"{d}={f}" for d, f in self._flags.items()),
        )


def cost_comment(cost: float, account: Account) -> bytes:
    return f": x-tollgate-cost {cost:.8f} {account.currency}\n\n".encode()


def _usage(body: bytes) -> dict[str, int]:
    """The answer's top-level `usage`. It comes at or near the end, so it is read from there
    when what follows it closes the answer's own object; anything else parses the whole answer."""
    found = _usage_near_end(body)
    return found if found is not None else _usage_of(_object(body))


def _usage_of(answer: dict[str, Any]) -> dict[str, int]:
    usage = answer.get("usage")
    return flat_counts(usage) if isinstance(usage, dict) else {}


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
    return flat_counts(value) if isinstance(value, dict) else None


def _object(body: bytes) -> dict[str, Any]:
    """The answer as a JSON object, or an empty one when it is not one."""
    try:
        value = json.loads(body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


_IMAGES = frozenset({Operation.IMAGES.value, Operation.IMAGE_EDITS.value})
_PER_UNIT = frozenset(
    {Operation.TRANSCRIPTIONS, Operation.TRANSLATIONS, Operation.SPEECH, Operation.IMAGE_EDITS}
)
_HEARD = frozenset({Operation.TRANSCRIPTIONS.value, Operation.TRANSLATIONS.value})
_DECODER = json.JSONDecoder()
_TAIL_BYTES = 8192  # a usage block and the members after it: a few hundred bytes
