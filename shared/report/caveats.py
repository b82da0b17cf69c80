"""When a comparison of the direct and gateway paths is not to be trusted: too few successful
rows on a side (a p99 of 7 rows is their maximum, a p50 of 2 a coin toss), or so many failures
that the rows left may not be typical.

A comparison is one model and stream mode timed on both paths. Its caveats are printed under
the overhead table and drawn on the chart and the page, with the counts they rest on.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.report.stats import DIRECT, GATEWAY, GroupStats, Summary

MIN_GOOD = 20  # fewer successful rows than this on either side: thin data
MAX_ERROR_RATE = 0.05  # more failed requests than this on either side: failing


@dataclass(frozen=True)
class Caveat:
    """Why one comparison is doubtful: in full (reasons) and in a few words (flags)."""

    model: str
    stream: bool
    reasons: tuple[str, ...]
    flags: tuple[str, ...]

    def text(self) -> str:
        mode = "streamed" if self.stream else "not streamed"
        return f"{self.model} {mode}: {'; '.join(self.reasons)}"

    def short(self) -> str:
        return "warning: " + "; ".join(self.flags)


def caveats(summary: Summary) -> tuple[Caveat, ...]:
    """One caveat per doubtful comparison, in the summary's order."""
    by_key = {(g.model, g.stream, g.path): g for g in summary.groups}
    found: list[Caveat] = []
    for group in summary.groups:
        direct = by_key.get((group.model, group.stream, DIRECT))
        if group.path == GATEWAY and direct is not None:
            found += _caveat(direct, group)
    return tuple(found)


def by_comparison(found: tuple[Caveat, ...]) -> dict[tuple[str, bool], Caveat]:
    return {(c.model, c.stream): c for c in found}


def _caveat(direct: GroupStats, gateway: GroupStats) -> list[Caveat]:
    reasons: list[str] = []
    flags: list[str] = []
    if min(direct.good, gateway.good) < MIN_GOOD:
        reasons.append(
            f"thin data: {direct.good} good direct rows against {gateway.good} good gateway "
            f"rows (fewer than {MIN_GOOD} on a side)"
        )
        flags.append(f"thin data ({direct.good} vs {gateway.good} good rows)")
    for group in (direct, gateway):
        if group.error_rate > MAX_ERROR_RATE:
            rate = f"{group.error_rate:.1%}"
            reasons.append(
                f"failing: {group.errors} of {group.count} {group.path} requests failed "
                f"({rate}, more than {MAX_ERROR_RATE:.0%})"
            )
            flags.append(f"{group.path} {group.errors} of {group.count} failed")
    if not reasons:
        return []
    return [Caveat(gateway.model, gateway.stream, tuple(reasons), tuple(flags))]
