"""One usage record per request: what finance bills and operators chart. Never message text,
never a key (only its id)."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any, Protocol, TypedDict

from shared.usage.counts import Tokens

RECORD_VERSION = 1


@dataclass
class UsageRecord:
    time: str  # request start, ISO 8601 UTC with milliseconds, e.g. 2026-11-25T13:35:18.123Z
    request_id: str
    system: str  # "-" when the caller could not be identified
    key_id: str  # "-" likewise
    route: str  # gateway | azure | openai
    operation: str  # chat | responses | completions | embeddings | images | batch | files | ...
    model: str  # the public model name ("-" when there was none)
    deployment: str  # the upstream that answered ("" when none did)
    status: int  # the HTTP status the client got
    error_code: str  # the error's code ("" on success)
    stream: bool
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    reserved_tokens: int  # what the limits reserved on admission (0: no limits applied)
    settled_tokens: int  # what the limits were settled to
    cost: float  # from the price table, in its currency
    ttfb_ms: float  # until the first byte went to the client
    total_ms: float
    attempts: int  # deployments tried
    client_ip: str
    client_disconnected: bool
    response_id: str = ""  # the stored response a Responses API call created
    cached_tokens: int = 0  # of prompt_tokens, read from the upstream's prompt cache
    reasoning_tokens: int = 0  # of completion_tokens, spent reasoning
    images: int = 0  # images generated (image calls are priced per image)
    audio_seconds: float = 0.0  # audio transcribed or translated (priced per minute)
    characters: int = 0  # text turned into speech (priced per million characters)
    batch_id: str = ""  # the batch whose answered lines this record sums
    batch_requests: int = 0  # how many of its lines were answered
    cache: str = ""  # the response cache: hit, miss, refresh, bypass ("": not cached)
    saved_tokens: int = 0  # a hit: the tokens the kept answer had used
    saved_cost: float = 0.0  # a hit: what those tokens would have cost
    content_checks: str = ""  # which content checks ran, e.g. "prompt=local,content_safety"
    content_flags: str = ""  # which fired (categories and severities, never text)
    v: int = RECORD_VERSION

    def to_json(self) -> str:
        # vars(), not asdict(): the fields are flat, and asdict deep-copies (5x slower).
        return json.dumps(vars(self), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> UsageRecord:
        data: dict[str, Any] = json.loads(line)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class TokenFields(TypedDict):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cached_tokens: int
    reasoning_tokens: int


def token_fields(tokens: Tokens) -> TokenFields:
    """A record's token fields, from the counts of a usage block."""
    return {
        "prompt_tokens": tokens.prompt,
        "completion_tokens": tokens.completion,
        "total_tokens": tokens.total,
        "cached_tokens": tokens.cached,
        "reasoning_tokens": tokens.reasoning,
    }


class RecordSink(Protocol):
    def add(self, record: UsageRecord) -> None: ...
