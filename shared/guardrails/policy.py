"""A system's content policy, as its registry entry says it:

    "content_policy": {
      "prompt": {"hate": 2, "sexual": 2, "violence": 4, "self_harm": 2},
      "answer": {"hate": 2, "sexual": 2, "violence": 4, "self_harm": 2},
      "prompt_shields": true,
      "blocklists": ["competitors"],
      "patterns": ["(?i)internal use only"],
      "outage": "open",
      "window_chars": 200
    }

A category is blocked at or above its severity (0-7, as Azure AI Content Safety grades it);
a category left out is not checked. Blocklists are named lists of terms kept in the registry;
patterns are regular expressions checked in the gateway itself, with no service at all."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from shared.errors import ConfigError

CATEGORIES = ("hate", "sexual", "violence", "self_harm")
OUTAGE_POLICIES = ("open", "closed")
DEFAULT_WINDOW_CHARS = 200
MAX_PATTERNS = 100
_FIELDS = frozenset(
    {"prompt", "answer", "prompt_shields", "blocklists", "patterns", "outage", "window_chars"}
)
BLOCKLIST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~-]{0,63}$")


@dataclass(frozen=True)
class ContentPolicy:
    prompt: dict[str, int] = field(default_factory=dict)  # category -> blocking severity
    answer: dict[str, int] = field(default_factory=dict)
    prompt_shields: bool = False
    blocklists: tuple[str, ...] = ()
    patterns: tuple[re.Pattern[str], ...] = ()
    outage: str = "open"  # when Content Safety cannot answer: admit (logged) or refuse (503)
    window_chars: int = DEFAULT_WINDOW_CHARS  # a streamed answer is checked every this many
    terms: tuple[tuple[str, str], ...] = ()  # (blocklist, term), from the registry's blocklists

    @property
    def checks_answers(self) -> bool:
        return bool(self.answer or self.blocklists or self.patterns)


def parse_content_policy(spec: Any, where: str) -> ContentPolicy | None:
    if not spec:
        return None
    if not isinstance(spec, dict) or set(spec) - _FIELDS:
        raise ConfigError(f"{where}: content_policy takes {', '.join(sorted(_FIELDS))}")
    outage = spec.get("outage", "open")
    if outage not in OUTAGE_POLICIES:
        raise ConfigError(f"{where}: content_policy.outage is 'open' or 'closed'")
    window = spec.get("window_chars", DEFAULT_WINDOW_CHARS)
    if not isinstance(window, int) or isinstance(window, bool) or not 20 <= window <= 10_000:
        raise ConfigError(f"{where}: content_policy.window_chars is 20-10000")
    shields = spec.get("prompt_shields", False)
    if not isinstance(shields, bool):
        raise ConfigError(f"{where}: content_policy.prompt_shields is true or false")
    return ContentPolicy(
        prompt=_thresholds(spec.get("prompt"), f"{where}: content_policy.prompt"),
        answer=_thresholds(spec.get("answer"), f"{where}: content_policy.answer"),
        prompt_shields=shields,
        blocklists=_blocklists(spec.get("blocklists"), where),
        patterns=_patterns(spec.get("patterns"), where),
        outage=outage,
        window_chars=window,
    )


def _thresholds(raw: Any, where: str) -> dict[str, int]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or set(raw) - set(CATEGORIES):
        raise ConfigError(f"{where} maps {', '.join(CATEGORIES)} to a severity")
    for value in raw.values():
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 7:
            raise ConfigError(f"{where}: a severity is 0-7")
    return dict(raw)


def _blocklists(raw: Any, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(
        isinstance(n, str) and BLOCKLIST_NAME.match(n) for n in raw
    ):
        raise ConfigError(f"{where}: content_policy.blocklists is a list of blocklist names")
    return tuple(raw)


def _patterns(raw: Any, where: str) -> tuple[re.Pattern[str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > MAX_PATTERNS:
        raise ConfigError(f"{where}: content_policy.patterns is a list of up to 100 patterns")
    compiled = []
    for pattern in raw:
        try:
            compiled.append(re.compile(pattern))
        except (re.error, TypeError):
            message = f"{where}: content_policy.patterns: {pattern!r} is no pattern"
            raise ConfigError(message) from None
    return tuple(compiled)
