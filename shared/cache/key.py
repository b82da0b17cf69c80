"""The cache key of a request: a digest of what decides its answer, after redaction.

The model, operation and body count (messages or input, tools, sampling settings); what only
shapes the delivery or names the end user does not (`stream`, `stream_options`, `user`), nor the
body's own `model` (the route may name it instead). Only a digest is kept, never the text."""

from __future__ import annotations

import hashlib
import json
from typing import Any

_IGNORED = frozenset({"model", "stream", "stream_options", "user"})
PREFIX = "tg:cache:"


def request_key(scope: str, operation: str, model: str, body: dict[str, Any]) -> str:
    decisive = {name: value for name, value in body.items() if name not in _IGNORED}
    canonical = json.dumps(
        [operation, model, decisive], sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )
    digest = hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{PREFIX}{scope}:{digest}"


def scope_prefix(scope: str) -> str:
    """Every key of one scope starts with this."""
    return f"{PREFIX}{scope}:"
