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


class Blocked(Exception):
    def __init__(self, verdict: Verdict) -> None:
        super().__init__("content_filter")
        self.verdict = verdict


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
        """What may be sent now of `out` (whole events) and what was held; raises Blocked."""
        added = self._text_of(out) if out else ""
        if out and (added or self._held):
            self._held.append(out)
            self._held_text.append(added)
            self._held_chars += len(added)
        elif out:
            return out
        due = final or self._held_chars >= self.guard.policy.window_chars
        if not self._held or not (due or (added and not self._checked_once)):
            return b""
        await self._check()
        released, self._held, self._held_text, self._held_chars = b"".join(self._held), [], [], 0
        return released

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
            raise Blocked(verdict)
        self._before = text[-self.guard.policy.window_chars :]

    def _text_of(self, out: bytes) -> str:
        texts = []
        for event in _EVENT_END.split(out):
            for line in event.splitlines():
                if line.startswith(b"data:") and line[5:].lstrip().startswith(b"{"):
                    payload = line[5:].lstrip()
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
