"""Opt-in content logging: the prompts and completions of systems that asked for it, in a store
of their own (TOLLGATE_CONTENT_LOG), never in logs or usage records.

Files are `<system>/<yyyy>/<mm>/<dd>/<hh>/<instance>.jsonl`, so one system's content is one
prefix (what `tollgate systems purge` deletes). Retention: in Azure the container's lifecycle
rule deletes old blobs; each record also says until when it may be kept (`retention_until`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.errors import ConfigError
from shared.storage.append import record_writer
from shared.usage.sink import Line, UsageSink, hour_blob

MAX_RETENTION_DAYS = 3650
DEFAULT_CONTENT_RETENTION_DAYS = 30  # the content-logs container's lifecycle rule in infra


@dataclass(frozen=True)
class ContentLogging:
    """A system's opt-in: `"content_logging": {"retention_days": N}` in its spec."""

    retention_days: int


def parse_content_logging(spec: Any, where: str) -> ContentLogging | None:
    if not spec:
        return None
    days = spec.get("retention_days") if isinstance(spec, dict) else None
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_RETENTION_DAYS:
        raise ConfigError(f"{where}: content_logging.retention_days is 1-{MAX_RETENTION_DAYS}")
    return ContentLogging(days)


@dataclass
class ContentRecord:
    time: str  # request start, as in the usage record
    request_id: str
    system: str
    model: str
    request: dict[str, Any]  # the JSON body sent upstream, after redaction
    response_text: str  # the upstream's body, or the SSE text delivered to the client
    retention_until: str

    def to_json(self) -> str:
        return json.dumps(vars(self), ensure_ascii=False, separators=(",", ":"))


def content_blob(record: Line, instance: str) -> str:
    system = getattr(record, "system", "-")
    return f"{system}/{hour_blob(record, instance)}"


class ContentCapture:
    """What one opted-in request sends and gets back, until its account closes."""

    def __init__(self, sink: UsageSink, policy: ContentLogging, request: dict[str, Any]):
        self._sink, self._policy, self._request = sink, policy, request

    def write(self, time: str, request_id: str, system: str, model: str, text: bytes) -> None:
        started = datetime.fromisoformat(time.replace("Z", "+00:00"))
        until = started + timedelta(days=self._policy.retention_days)
        self._sink.add(
            ContentRecord(
                time=time,
                request_id=request_id,
                system=system,
                model=model,
                request=self._request,
                response_text=text.decode("utf-8", "replace"),
                retention_until=until.isoformat(timespec="seconds").replace("+00:00", "Z"),
            )
        )


def content_sink(
    location: str, connection_string: str | None, client_id: str | None, flush_seconds: float
) -> UsageSink:
    writer = record_writer(location, connection_string, client_id)
    return UsageSink(writer, flush_seconds, blob_of=content_blob, kind="content")
