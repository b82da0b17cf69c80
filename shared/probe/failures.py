"""What a probe run's failed requests come to, for its log line: per path, how many failed and
why, by HTTP status (or, with no response, the exception's name). Never a prompt, an answer,
a key or an upstream's message text.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from shared.probe.latency_csv import LatencyRow

_PATH_ORDER = ("direct", "gateway")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.:\[\] -]")
_REASON_CHARS = 60


def reason(row: LatencyRow) -> str:
    """Why a failed row failed: its status when it is not a success, else its error code."""
    if row.status and not 200 <= row.status < 300:
        return str(row.status)
    return _UNSAFE.sub("", row.error)[:_REASON_CHARS].strip() or f"status {row.status}"


def failure_summary(rows: Sequence[LatencyRow]) -> str:
    """`7 of 14 gateway requests failed (401: 7)`, a clause per path with failures; "" if none."""
    paths = sorted({row.path for row in rows}, key=_path_rank)
    clauses = []
    for path in paths:
        mine = [row for row in rows if row.path == path]
        why = Counter(reason(row) for row in mine if not row.ok)
        if why:
            counts = ", ".join(f"{label}: {n}" for label, n in _most_first(why))
            failed = sum(why.values())
            clauses.append(f"{failed} of {len(mine)} {path} requests failed ({counts})")
    return "; ".join(clauses)


def _path_rank(path: str) -> tuple[int, str]:
    return (_PATH_ORDER.index(path) if path in _PATH_ORDER else len(_PATH_ORDER), path)


def _most_first(counts: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))
