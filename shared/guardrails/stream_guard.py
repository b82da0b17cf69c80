"""A streamed answer checked as it goes: events that add text are held back until the text
is checked, the first at once (so the first token waits for one check at most), then every
`window_chars` of new text, each check reading that text with the window before it (a term
split across two checks is still seen). Events that add no text pass at once when nothing is
held. What fired ends the stream (stream_ending); what was held then is never sent."""

from __future__ import annotations

import json
import re
from typing import Any

from shared.guardrails.answers import AnswerGuard
from shared.guardrails.texts import event_text
from shared.guardrails.verdict import Verdict

_EVENT_END = re.compile(rb"\r?\n\r?\n")
_TEXT_KEYS = (b'"content"', b'"refusal"', b'"text"', b'"delta"')  # whatever the spacing


class Blocked(Exception):
    def __init__(self, verdict: Verdict, released: bytes) -> None:
        super().__init__("content_filter")
        self.verdict = verdict
        self.released = released  # checked before the window that fired: still to be sent


class StreamGuard:
    def __init__(self, guard: AnswerGuard) -> None:
        self.guard = guard
        self.first: dict[str, Any] = {}  # the first chunk's id, created and model
        self.checks: tuple[str, ...] = ()
        self.unavailable = False
        self._held: list[bytes] = []
        self._held_text: list[str] = []
        self._held_chars = 0
        self._before = ""  # the end of the text already checked
        self._checked_once = False

    async def admit(self, out: bytes, final: bool = False) -> bytes:
        """What may be sent now of `out` (whole events) and of what was held, one event at a
        time, so that no more than a window is ever held; raises Blocked."""
        released: list[bytes] = []
        for event in _events(out):
            added = self._text_of(event)
            if not added and not self._held:
                released.append(event)
                continue
            self._held.append(event)
            self._held_text.append(added)
            self._held_chars += len(added)
            if self._held_chars >= self.guard.policy.window_chars or not self._checked_once:
                await self._release(released)
        if final and self._held:
            await self._release(released)
        return b"".join(released)

    async def _release(self, released: list[bytes]) -> None:
        try:
            await self._check()
        except Blocked as blocked:
            raise Blocked(blocked.verdict, b"".join(released)) from None
        released += self._held
        self._held, self._held_text, self._held_chars = [], [], 0

    def verdict(self) -> Verdict:
        """What the checks of a stream that ended well did."""
        return Verdict(self.checks, (), unavailable=self.unavailable)

    async def _check(self) -> None:
        new = "".join(self._held_text)
        self._checked_once = True
        if not new:
            return
        text = self._before + new
        verdict = await self.guard.checks.answer(self.guard.policy, text)
        self.checks = verdict.checks
        self.unavailable = self.unavailable or verdict.unavailable
        if verdict.blocked:
            raise Blocked(verdict, b"")
        self._before = text[-self.guard.policy.window_chars :]

    def _text_of(self, event: bytes) -> str:
        texts = []
        for line in event.splitlines():
            if line.startswith(b"data:") and line[5:].lstrip().startswith(b"{"):
                payload = line[5:].lstrip()
                if self.first and not any(key in payload for key in _TEXT_KEYS):
                    continue  # no text in it (a role, usage or finish chunk): not parsed
                if not self.first:
                    self._remember(payload)
                texts.append(event_text(payload))
        return "".join(texts)

    def _remember(self, payload: bytes) -> None:
        try:
            chunk = json.loads(payload)
        except ValueError:
            return
        if isinstance(chunk, dict):
            self.first = {k: chunk[k] for k in ("id", "created", "model") if k in chunk}


def _events(out: bytes) -> list[bytes]:
    """`out` cut after each event's blank line (a last, unterminated one kept whole)."""
    events, start = [], 0
    for match in _EVENT_END.finditer(out):
        events.append(out[start : match.end()])
        start = match.end()
    if start < len(out):
        events.append(out[start:])
    return events
