"""Estimating a request's tokens before it goes upstream, and settling on what it really used."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from shared.limiter import Limiter, Reservation
from shared.stream_usage import UsageTap
from shared.tokens import chat_prompt_tokens, completion_allowance, embedding_input_tokens
from shared.upstreams import Operation

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
    prompt = chat_prompt_tokens(body, tokenizer_model)
    return prompt, prompt + completion_allowance(body, default)


@dataclass
class Meter:
    limiter: Limiter
    reservation: Reservation
    prompt_estimate: int

    def settle(self, tokens: int) -> None:
        self.limiter.settle_soon(self.reservation, tokens)

    def settle_body(self, status: int, body: bytes) -> None:
        if status != 200:
            self.settle(0)
            return
        total = _total_tokens(body)
        self.settle(self.reservation.estimate if total is None else total)

    def settle_stream(self, tap: UsageTap) -> None:
        usage = tap.usage or {}
        total = usage.get("total_tokens")
        if isinstance(total, int):
            self.settle(total)
            return
        counted = math.ceil(tap.completion_text_chars / CHARS_PER_TOKEN)
        delivered = max(tap.completion_pieces, counted)
        self.settle(self.prompt_estimate + delivered)


def _total_tokens(body: bytes) -> int | None:
    try:
        usage = json.loads(body).get("usage") or {}
    except (ValueError, AttributeError):
        return None
    total = usage.get("total_tokens") if isinstance(usage, dict) else None
    return total if isinstance(total, int) else None
