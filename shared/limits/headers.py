"""`x-ratelimit-*` headers on an admitted response, as OpenAI and Azure OpenAI send them."""

from __future__ import annotations

from shared.limits.limiter import Reservation, go_duration


def rate_limit_headers(reservation: Reservation | None) -> dict[str, str]:
    """The tightest requests limit and the tightest tokens limit that applied."""
    if reservation is None:
        return {}
    headers: dict[str, str] = {}
    for kind, label in (("rpm", "requests"), ("tpm", "tokens")):
        pairs = [
            (state, check)
            for check, state in zip(reservation.plan.checks, reservation.states, strict=True)
            if check.kind == kind
        ]
        if not pairs:
            continue
        state, check = min(pairs, key=lambda pair: pair[0].remaining)
        headers[f"x-ratelimit-limit-{label}"] = str(check.limit)
        headers[f"x-ratelimit-remaining-{label}"] = str(max(state.remaining, 0))
        headers[f"x-ratelimit-reset-{label}"] = go_duration(state.reset_ms)
    return headers
