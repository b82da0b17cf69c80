"""Queued faults (``/_sim/faults``) and the request log (``/_sim/requests``)."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Fault:
    """Applied to the next ``count`` chat/embeddings requests whose model matches."""

    status: int | None = None
    count: int = 1
    retry_after: float | None = None
    retry_after_ms: float | None = None
    deployment: str | None = None
    body: Any = None
    reset_after_chunks: int | None = None
    delay_ms: float | None = None
    stall_after_chunks: int | None = None  # a stream goes silent after this many chunks
    stall_ms: float | None = None  # for this long (then goes on)
    echo: str | None = None  # "html" or "json": the error quotes the request headers, as some
    # proxies' error pages do (the gateway must never relay the key it sent)

    def matches(self, model: str | None) -> bool:
        return self.deployment is None or self.deployment == model

    def retry_headers(self) -> dict[str, str]:
        headers = {}
        if self.retry_after is not None:
            headers["retry-after"] = f"{self.retry_after:g}"
        if self.retry_after_ms is not None:
            headers["retry-after-ms"] = f"{self.retry_after_ms:g}"
        return headers

    def retry_seconds(self) -> float | None:
        if self.retry_after is not None:
            return self.retry_after
        if self.retry_after_ms is not None:
            return float(math.ceil(self.retry_after_ms / 1000))
        return None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


ECHOES = ("html", "json")
_EFFECTS = ("status", "reset_after_chunks", "delay_ms", "stall_after_chunks")


def _check_number(data: dict[str, Any], name: str, integer: bool, low: float) -> None:
    value = data.get(name)
    if value is None:
        return
    kinds = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value < low:
        kind = "an integer" if integer else "a number"
        raise ValueError(f"{name} must be {kind} >= {low:g}")


def parse_fault(data: Any) -> Fault:
    """Validate a ``POST /_sim/faults`` body; raises ValueError with a readable reason."""
    if not isinstance(data, dict):
        raise ValueError("fault must be a JSON object")
    unknown = set(data) - set(Fault.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown fault fields: {sorted(unknown)}")
    _check_number(data, "status", True, 100)
    _check_number(data, "count", True, 1)
    _check_number(data, "reset_after_chunks", True, 0)
    _check_number(data, "stall_after_chunks", True, 0)
    for name in ("retry_after", "retry_after_ms", "delay_ms", "stall_ms"):
        _check_number(data, name, False, 0)
    if data.get("status") is not None and data["status"] > 599:
        raise ValueError("status must be <= 599")
    if data.get("deployment") is not None and not isinstance(data["deployment"], str):
        raise ValueError("deployment must be a string")
    if all(data.get(k) is None for k in _EFFECTS):
        raise ValueError("a fault needs status, reset_after_chunks, delay_ms or stall_after_chunks")
    if (data.get("stall_after_chunks") is None) != (data.get("stall_ms") is None):
        raise ValueError("stall_after_chunks and stall_ms go together")
    if data.get("status") is not None and data.get("reset_after_chunks") is not None:
        raise ValueError("status and reset_after_chunks are exclusive")
    if data.get("echo") is not None and (data["echo"] not in ECHOES or not data.get("status")):
        raise ValueError(f"echo is one of {', '.join(ECHOES)}, with a status")
    fields = {k: v for k, v in data.items() if v is not None}
    return Fault(**fields)


class FaultQueue:
    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        self._faults.append(fault)

    def clear(self) -> None:
        self._faults.clear()

    def pending(self) -> list[Fault]:
        return list(self._faults)

    def take(self, model: str | None) -> Fault | None:
        """The first queued fault matching ``model``, used up by one request."""
        for position, fault in enumerate(self._faults):
            if fault.matches(model):
                fault.count -= 1
                if fault.count <= 0:
                    del self._faults[position]
                return fault
        return None


class RequestLog:
    """The last ``limit`` requests, as mutable dicts the handlers update as they finish."""

    def __init__(self, limit: int = 1000) -> None:
        self._records: deque[dict[str, Any]] = deque(maxlen=limit)

    def add(self, record: dict[str, Any]) -> None:
        self._records.append(record)

    def snapshot(self) -> list[dict[str, Any]]:
        return list(self._records)

    def clear(self) -> None:
        self._records.clear()
