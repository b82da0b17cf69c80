"""Watching a streamed chat completion for its usage while relaying it byte for byte.

To settle a token reservation the gateway asks the upstream for `stream_options.include_usage`
even when the client did not, and then removes that extra usage event from what the client sees.
When no usage arrives (a broken stream), the delivered text is counted instead, in characters only:
no message text is ever kept.
"""

from __future__ import annotations

import json
import re

from shared.routes import Operation
from shared.usage.counts import flat_counts

# An event ends at a blank line; LF and CRLF line ends, even mixed. Bare-CR line ends (allowed by
# the SSE spec, used by neither OpenAI nor Azure) are not recognised: such a stream is held to
# the end and then forwarded whole by flush().
_EVENT_END = re.compile(rb"\n\r?\n")
# Keys whose string values are completion text: delta content, tool-call arguments, refusals;
# in a Responses API stream, its events' deltas.
_TEXT_KEYS = (b'"content"', b'"arguments"', b'"refusal"')
_RESPONSES_TEXT_KEYS = (b'"delta"',)
_COMPLETIONS_TEXT_KEYS = (b'"text"',)  # legacy completions: choices[].text
_TEXT_KEYS_OF = {
    Operation.RESPONSES: _RESPONSES_TEXT_KEYS,
    Operation.COMPLETIONS: _COMPLETIONS_TEXT_KEYS,
}
# The Responses API's terminal events carry the usage inside their `response`.
_TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
_WHITESPACE = b" \t\r\n"
_QUOTE, _BACKSLASH, _COLON, _BRACE = 0x22, 0x5C, 0x3A, 0x7B
# A stream that never ends an event (not SSE at all, or a runaway upstream) is not buffered
# without bound: past this the held bytes are sent on uninspected.
_MAX_HELD = 1 << 20


class UsageTap:
    """Fed each upstream chunk, returns the bytes to send to the client now.

    Call flush() when the upstream ended cleanly. When it broke, just stop: the held-back partial
    event is then neither sent (it would corrupt the gateway's error event) nor counted.
    """

    __slots__ = (
        "_passing",
        "_responses",
        "_tail",
        "_text_keys",
        "completion_pieces",
        "completion_text_chars",
        "final_status",
        "response_id",
        "saw_done",
        "strip_usage_chunk",
        "usage",
    )

    def __init__(self, strip_usage_chunk: bool, operation: Operation = Operation.CHAT) -> None:
        self.strip_usage_chunk = strip_usage_chunk
        # A Responses API stream: named events, usage in the last one.
        self._responses = operation is Operation.RESPONSES
        self._text_keys = _TEXT_KEYS_OF.get(operation, _TEXT_KEYS)
        self.usage: dict[str, int] | None = None
        self.completion_text_chars = 0
        self.completion_pieces = 0
        self.saw_done = False
        self.response_id: str | None = None  # a Responses API stream's, from its first event
        self.final_status = ""  # a Responses API stream's, from its terminal event
        self._tail = b""
        self._passing = False  # the held event's start was already sent uninspected

    @property
    def responses(self) -> bool:
        """Whether this is a Responses API stream (named events, numbered)."""
        return self._responses

    def feed(self, chunk: bytes) -> bytes:
        tail = self._tail
        data = tail + chunk if tail else chunk
        # The tail holds no event end, so one can only start in its last two bytes ("\n\r").
        match = _EVENT_END.search(data, len(tail) - 2 if len(tail) > 2 else 0)
        if match is None:
            return self._hold(data)
        start = kept = 0
        parts: list[bytes] | None = None  # only built when an event is dropped
        while match is not None:
            end = match.end()
            if self._passing:
                self._passing = False
            elif not self._inspect(data, start, end):
                parts = parts or []
                parts.append(data[kept:start])
                kept = end
            start = end
            match = _EVENT_END.search(data, end)
        if parts is None:
            send = data if start == len(data) else data[:start]
        else:
            parts.append(data[kept:start])
            send = b"".join(parts)
        if start == len(data):
            self._tail = b""
            return send
        return send + self._hold(data[start:])

    def flush(self) -> bytes:
        """The end of the stream: what is held is a last, unterminated event."""
        tail, self._tail = self._tail, b""
        if not tail or self._passing or self._inspect(tail, 0, len(tail)):
            return tail
        return b""

    def _hold(self, rest: bytes) -> bytes:
        if len(rest) <= _MAX_HELD:
            self._tail = rest
            return b""
        self._passing = True
        self._tail = rest[-2:]  # may be the start of the event end
        return rest[:-2]

    def _inspect(self, data: bytes, start: int, end: int) -> bool:
        """Record what the event data[start:end] tells; False if it is to be dropped."""
        chars = 0
        # Searching backwards: the keys sit in the back half of a chunk.
        for key in self._text_keys:
            at = data.rfind(key, start, end)
            while at >= 0:
                value = _value_at(data, at + len(key), end)
                if value >= 0 and data[value] == _QUOTE:
                    chars += _string_chars(data, value, end)
                at = data.rfind(key, start, at)
        if chars:
            self.completion_text_chars += chars
            self.completion_pieces += 1
        keep = True
        at = data.rfind(b'"usage"', start, end)
        while at >= 0:
            if not data.startswith(b":null", at + 7):
                value = _value_at(data, at + 7, end)
                if value >= 0 and data[value] == _BRACE:
                    keep = self._take_usage(data[start:end])
                    break
            at = data.rfind(b'"usage"', start, at)
        if (
            self._responses
            and self.response_id is None
            and data.find(b'"response.created"', start, end) >= 0
        ):
            self._take_response_id(data[start:end])
        # An event opening with a JSON data line cannot be [DONE]; this spares a search.
        if (
            not self.saw_done
            and not data.startswith(b"data: {", start)
            and data.find(b"[DONE]", start, end) >= 0
        ):
            self.saw_done = _payload(data[start:end]).startswith(b"[DONE]")
        return keep

    def _take_response_id(self, event: bytes) -> None:
        try:
            obj = json.loads(_payload(event))
        except (ValueError, RecursionError):
            return
        response = obj.get("response") if isinstance(obj, dict) else None
        if isinstance(response, dict) and isinstance(response.get("id"), str):
            self.response_id = response["id"]

    def _take_usage(self, event: bytes) -> bool:
        try:
            obj = json.loads(_payload(event))
        except (ValueError, RecursionError):
            return True
        if not isinstance(obj, dict):
            return True
        if obj.get("type") in _TERMINAL and isinstance(obj.get("response"), dict):
            usage = obj["response"].get("usage")
            status = obj["response"].get("status")
            self.final_status = status if isinstance(status, str) else ""
            if isinstance(usage, dict):
                self.usage = flat_counts(usage)
            return True
        if not isinstance(obj.get("usage"), dict):
            return True
        self.usage = flat_counts(obj["usage"])
        return not (self.strip_usage_chunk and obj.get("choices") == [])


def _value_at(data: bytes, i: int, end: int) -> int:
    """The index of the value after a JSON key ending before i, or -1."""
    while i < end and data[i] in _WHITESPACE:
        i += 1
    if i >= end or data[i] != _COLON:
        return -1
    i += 1
    while i < end and data[i] in _WHITESPACE:
        i += 1
    return i if i < end else -1


def _string_chars(data: bytes, quote: int, end: int) -> int:
    """Characters in the JSON string starting at data[quote]; 0 if it is unterminated."""
    close = data.find(b'"', quote + 1, end)
    while close >= 0 and data[close - 1] == _BACKSLASH:
        slash = close - 1
        while data[slash - 1] == _BACKSLASH:
            slash -= 1
        if (close - slash) % 2 == 0:  # the backslashes escape one another, not the quote
            break
        close = data.find(b'"', close + 1, end)
    if close < 0:
        return 0
    raw = data[quote + 1 : close]
    if _BACKSLASH not in raw:
        return len(raw.decode("utf-8", "replace"))
    try:
        text: str = json.loads(data[quote : close + 1])
    except ValueError:
        return len(raw)
    return len(text)


def _payload(event: bytes) -> bytes:
    """The event's data: its `data:` lines joined, as an SSE client sees it. Without any, the
    event itself: a body that is not SSE (an upstream that ignored `stream`) is one JSON value."""
    lines = [
        line[6:] if line.startswith(b"data: ") else line[5:]
        for line in event.splitlines()
        if line.startswith(b"data:")
    ]
    return b"\n".join(lines) if lines else event
