"""A streamed answer checked as it goes (shared/guardrails/stream_guard.py), with local checks
only: events are released a window at a time, text is found whatever the JSON's spacing, and
what fires ends the stream with what passed before it still sent."""

from __future__ import annotations

import json

import pytest

from shared.guardrails.answers import AnswerGuard
from shared.guardrails.checks import ContentChecks
from shared.guardrails.policy import parse_content_policy
from shared.guardrails.stream_guard import Blocked, StreamGuard
from shared.routes import Operation


def guard(window: int = 20) -> StreamGuard:
    policy = parse_content_policy({"patterns": ["(?i)forbidden"], "window_chars": window}, "t")
    assert policy is not None
    return StreamGuard(AnswerGuard(ContentChecks(None), policy, Operation.CHAT))


def event(content: str | None, spaced: bool = False) -> bytes:
    delta = {"role": "assistant"} if content is None else {"content": content}
    chunk = {"id": "c1", "model": "m", "created": 1, "choices": [{"index": 0, "delta": delta}]}
    text = json.dumps(chunk) if spaced else json.dumps(chunk, separators=(",", ":"))
    return b"data: " + text.encode() + b"\n\n"


async def test_events_without_text_pass_and_text_is_released_a_window_at_a_time() -> None:
    stream = guard(window=20)
    assert await stream.admit(event(None)) == event(None)  # nothing held: sent at once
    assert await stream.admit(event("Hello")) == event("Hello")  # the first text: one check
    assert await stream.admit(event(" there,")) == b""  # held: under a window
    words = event(" a longer piece of text")
    assert await stream.admit(words) == event(" there,") + words  # a window: checked, sent
    assert await stream.admit(event(" tail")) == b""  # held
    done = b"data: [DONE]\n\n"
    assert await stream.admit(done) == b""  # behind held text, even without text of its own
    assert await stream.admit(b"", final=True) == event(" tail") + done  # the end: checked


async def test_a_burst_is_checked_event_by_event_and_spacing_does_not_hide_text() -> None:
    stream = guard(window=20)
    burst = event("Fine so far") + event(" and still fine here") + event(" FORBIDDEN", True)
    with pytest.raises(Blocked) as blocked:
        await stream.admit(burst, final=True)
    assert blocked.value.released == event("Fine so far") + event(" and still fine here")
    assert blocked.value.verdict.flags() == "pattern:1"
    assert stream.first == {"id": "c1", "created": 1, "model": "m"}


async def test_a_term_split_between_two_windows_is_still_found() -> None:
    stream = guard(window=20)
    await stream.admit(event("x"))
    assert await stream.admit(event("twenty characters forb")) != b""
    with pytest.raises(Blocked):
        await stream.admit(event("idden and the rest of the window"), final=True)
