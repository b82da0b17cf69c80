"""An upstream's usage block read as token counts: prompt, completion, and the cached and
reasoning tokens inside them, under chat's names and the Responses API's alike; and the units
priced otherwise (images, audio seconds, characters)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple


class Tokens(NamedTuple):
    prompt: int = 0
    completion: int = 0
    cached: int = 0  # of the prompt tokens, those read from the upstream's prompt cache
    reasoning: int = 0  # of the completion tokens, those the model spent reasoning

    @property
    def total(self) -> int:
        return self.prompt + self.completion


class Units(NamedTuple):
    """What a call used that is priced per unit rather than per token."""

    images: int = 0
    audio_seconds: float = 0.0  # of audio transcribed or translated
    characters: int = 0  # of text turned into speech

    def __bool__(self) -> bool:
        return bool(self.images or self.audio_seconds or self.characters)


NO_UNITS = Units()
# (public model, tokens, units, at the batch price) -> cost in the price table's currency
Price = Callable[[str, Tokens, Units, bool], float]


def flat_counts(usage: dict[str, Any], prefix: str = "") -> dict[str, int]:
    """The usage block's whole numbers; nested ones (token details) under dotted names."""
    counts: dict[str, int] = {}
    for name, value in usage.items():
        if isinstance(value, int) and not isinstance(value, bool):
            counts[prefix + name] = value
        elif isinstance(value, dict):
            counts.update(flat_counts(value, f"{prefix}{name}."))
    return counts


def tokens_of(counts: dict[str, int]) -> Tokens:
    """Chat and embeddings say prompt/completion, the Responses API input/output."""
    get = counts.get
    return Tokens(
        get("prompt_tokens", get("input_tokens", 0)),
        get("completion_tokens", get("output_tokens", 0)),
        get("prompt_tokens_details.cached_tokens", get("input_tokens_details.cached_tokens", 0)),
        get(
            "completion_tokens_details.reasoning_tokens",
            get("output_tokens_details.reasoning_tokens", 0),
        ),
    )
