"""`x-ratelimit-*` response headers, as OpenAI and Azure OpenAI send them."""

from __future__ import annotations

from shared.limits.limiter import Reservation


def go_duration(ms: int) -> str:
    """OpenAI's reset format: `12ms`, `1s`, `13.694s`, `6m0s`."""
    if ms < 1000:
        return f"{max(ms, 0)}ms"
    if ms < 60_000:
        return f"{ms / 1000:.3f}".rstrip("0").rstrip(".") + "s"
    minutes, rest = divmod(ms, 60_000)
    seconds = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    return f"{minutes}m{seconds}s"


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
