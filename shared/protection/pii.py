"""PII redaction of request bodies before they leave for the upstream, per system policy.

A policy is `{"mode": "mask" | "reject", "kinds": [...], "patterns": [{"name", "pattern"}]}`.
`kinds` picks built-in detectors (email, phone, tw_national_id, credit_card; default: all;
"custom" is accepted and means the patterns, which apply whenever configured). In mask mode
every match in a message content, text part or embeddings input is replaced in place by a typed
placeholder; in reject mode the body is left alone. Either way the result is a `Findings`: kinds
and counts, never the matched values. Nothing here logs.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from shared.errors import ConfigError
from shared.protection import pii_detectors
from shared.protection.pii_detectors import (
    BUILTIN_KINDS,
    CREDIT_CARD,
    EMAIL,
    PHONE,
    TW_NATIONAL_ID,
    CustomPattern,
    Finder,
    Span,
    merge_spans,
    numeric_hint,
)

Mode = Literal["mask", "reject"]
PLACEHOLDERS: dict[str, str] = {
    EMAIL: "[EMAIL]",
    PHONE: "[PHONE]",
    TW_NATIONAL_ID: "[TW_ID]",
    CREDIT_CARD: "[CARD]",
}
_CUSTOM = "custom"
_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_\-]{0,39}", re.ASCII)


class PolicyError(ConfigError):
    """A redaction policy that cannot be used (unknown mode or kind, bad pattern)."""


@dataclass(frozen=True)
class Findings:
    """How many matches of each kind a body held; safe to log and to return to the caller."""

    counts: dict[str, int] = field(default_factory=dict)

    @property
    def kinds(self) -> list[str]:
        return sorted(self.counts)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def __bool__(self) -> bool:
        return self.total > 0

    def as_dict(self) -> dict[str, Any]:
        return {"kinds": self.kinds, "counts": dict(sorted(self.counts.items()))}


class Redactor:
    """Detects and masks (or only reports) PII; build once per system policy, thread-safe."""

    def __init__(self, policy: Mapping[str, Any] | None = None) -> None:
        policy = {} if policy is None else policy
        if not isinstance(policy, Mapping):
            raise PolicyError("The redaction policy must be an object.")
        mode = policy.get("mode", "mask")
        if mode not in ("mask", "reject"):
            raise PolicyError("The redaction mode must be 'mask' or 'reject'.")
        self.mode: Mode = mode
        kinds = policy.get("kinds", list(BUILTIN_KINDS))
        if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
            raise PolicyError("The redaction kinds must be a list of names.")
        unknown = set(kinds) - {*BUILTIN_KINDS, _CUSTOM}
        if unknown:
            raise PolicyError(f"Unknown redaction kinds: {', '.join(sorted(unknown))}.")
        finders = pii_detectors.builtin_finders()
        self.kinds = frozenset(k for k in kinds if k in finders)
        self._email: Finder | None = finders[EMAIL] if EMAIL in self.kinds else None
        self._numeric = [finders[k] for k in BUILTIN_KINDS if k != EMAIL and k in self.kinds]
        self.patterns = _custom_patterns(policy.get("patterns"))
        self._placeholders = dict(PLACEHOLDERS)
        self._placeholders.update({p.name: f"[{p.name.upper()}]" for p in self.patterns})
        self._placeholder_re = re.compile(
            "|".join(re.escape(p) for p in sorted(set(self._placeholders.values())))
        )

    @property
    def active(self) -> bool:
        return bool(self.kinds or self.patterns)

    def find(self, text: str) -> list[Span]:
        """Non-overlapping spans in order; overlapping matches merge into the longest's kind."""
        spans: list[Span] = []
        if self._email is not None and "@" in text:
            spans += self._email(text)
        if self._numeric and numeric_hint(text):
            for finder in self._numeric:
                spans += finder(text)
        for pattern in self.patterns:
            spans += pattern.find(text)
        if not spans:
            return []
        if "[" in text:
            # Placeholders already in the text (a second pass) are not matches themselves.
            taken = [(m.start(), m.end()) for m in self._placeholder_re.finditer(text)]
            spans = [s for s in spans if not any(s.start < e and b < s.end for b, e in taken)]
        return merge_spans(spans)

    def redact_text(self, text: str) -> tuple[str, Counter[str]]:
        """The masked text (unchanged in reject mode) and the count of each kind found."""
        counts: Counter[str] = Counter()
        return self._apply(text, counts), counts

    def redact_chat(self, body: object) -> Findings:
        """Masks every string content and every text part of a chat completions body in place."""
        counts: Counter[str] = Counter()
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(messages, list):
            return Findings()
        for message in messages:
            if not isinstance(message, dict):
                continue
            content = message.get("content")
            if isinstance(content, str):
                self._replace(message, "content", content, counts)
            elif isinstance(content, list):
                for part in content:
                    if isinstance(part, dict) and part.get("type") == "text":
                        text = part.get("text")
                        if isinstance(text, str):
                            self._replace(part, "text", text, counts)
        return Findings(dict(counts))

    def redact_responses(self, body: object) -> Findings:
        """Masks a Responses API `input` (a string, or message items' string content and text
        parts) and `instructions` in place."""
        counts: Counter[str] = Counter()
        if not isinstance(body, dict):
            return Findings()
        for key in ("input", "instructions"):
            value = body.get(key)
            if isinstance(value, str):
                self._replace(body, key, value, counts)
        items = body.get("input")
        for item in items if isinstance(items, list) else ():
            if not isinstance(item, dict):
                continue
            content = item.get("content")
            if isinstance(content, str):
                self._replace(item, "content", content, counts)
            for part in content if isinstance(content, list) else ():
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    self._replace(part, "text", part["text"], counts)
        return Findings(dict(counts))

    def redact_embeddings(self, body: object, field: str = "input") -> Findings:
        """Masks an embeddings `input`, or a legacy completions `prompt` (field="prompt"): a
        string or strings; token id lists are left alone."""
        counts: Counter[str] = Counter()
        if not isinstance(body, dict):
            return Findings()
        value = body.get(field)
        if isinstance(value, str):
            self._replace(body, field, value, counts)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, str):
                    self._replace(value, i, item, counts)
        return Findings(dict(counts))

    def _replace(self, holder: Any, key: Any, text: str, counts: Counter[str]) -> None:
        masked = self._apply(text, counts)
        if masked is not text:
            holder[key] = masked

    def _apply(self, text: str, counts: Counter[str]) -> str:
        spans = self.find(text)
        if not spans:
            return text
        counts.update(s.kind for s in spans)
        if self.mode == "reject":
            return text
        pieces: list[str] = []
        last = 0
        for span in spans:
            pieces += (text[last : span.start], self._placeholders[span.kind])
            last = span.end
        pieces.append(text[last:])
        return "".join(pieces)


def _custom_patterns(raw: object) -> tuple[CustomPattern, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise PolicyError("The redaction patterns must be a list of {name, pattern}.")
    taken = {*BUILTIN_KINDS, _CUSTOM, *(p.strip("[]").lower() for p in PLACEHOLDERS.values())}
    patterns: list[CustomPattern] = []
    for entry in raw:
        name = entry.get("name") if isinstance(entry, Mapping) else None
        pattern = entry.get("pattern") if isinstance(entry, Mapping) else None
        if not isinstance(name, str) or not isinstance(pattern, str) or not pattern:
            raise PolicyError("Each redaction pattern needs a string name and pattern.")
        if not _NAME_RE.fullmatch(name):
            raise PolicyError(f"Redaction pattern name {name!r} must be letters, digits, _ or -.")
        if name.lower() in taken:
            raise PolicyError(f"Redaction pattern name {name!r} is already in use.")
        taken.add(name.lower())
        try:
            patterns.append(CustomPattern(name, pattern))
        except re.error as exc:
            raise PolicyError(f"Redaction pattern {name!r} is not a valid regex: {exc}.") from exc
    return tuple(patterns)
