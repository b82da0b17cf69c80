"""Spotting the first content token of a streamed chat answer as its bytes arrive.

The first bytes of a stream are rarely a token: Azure sends its prompt-filter chunk (no
choices), every upstream a role-only chunk (`"content": ""`), and some send keep-alive comments.
The first content token is the first SSE `data:` event whose `choices[0].delta.content` is a
non-empty string.
"""

from __future__ import annotations

import json
from typing import Any


class FirstContent:
    """Fed a stream's bytes chunk by chunk; `seen` from the chunk that completes the first
    event carrying content. An event split across chunks counts when its last byte arrives."""

    def __init__(self) -> None:
        self.seen = False
        self._partial = b""  # the unfinished last line of what was fed so far

    def feed(self, chunk: bytes) -> bool:
        if self.seen:
            return True
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        if any(carries_content(line) for line in lines):
            self.seen, self._partial = True, b""
        return self.seen


def carries_content(line: bytes) -> bool:
    """Whether one SSE line is a `data:` event with a non-empty choices[0].delta.content."""
    line = line.rstrip(b"\r")
    if not line.startswith(b"data:"):
        return False
    payload = line[5:].strip()
    if not payload or payload == b"[DONE]":
        return False
    try:
        event: Any = json.loads(payload)
    except ValueError:
        return False
    choices = event.get("choices") if isinstance(event, dict) else None
    first = choices[0] if isinstance(choices, list) and choices else None
    delta = first.get("delta") if isinstance(first, dict) else None
    content = delta.get("content") if isinstance(delta, dict) else None
    return isinstance(content, str) and content != ""
