"""Batches kept in memory (`/batches`): creation checks, a life computed from the clock on each
read (validating, in_progress, finalizing, completed, or failed, or cancelled), the output and
error files a completed batch leaves, and the Batch object."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from . import errors
from .batch_lines import ENDPOINTS, BatchRun, parse_lines, run_lines, usage_block
from .files import StoredFile, add_file, page

BATCHES_LIMIT = 10_000
_EXPIRY = 24 * 3600  # completion_window "24h"
# When each phase ends, as a share of the batch's duration (the config's batch_ms).
_VALIDATED, _PROCESSED = 0.1, 0.8


@dataclass(slots=True)
class Batch:
    batch_id: str
    endpoint: str
    input_file_id: str
    metadata: dict[str, str] | None
    model: str | None
    total: int  # requests in its input file
    run: BatchRun | None  # None: its input file was malformed
    problems: list[dict[str, Any]]
    created: float  # time.time()
    duration: float  # seconds from creation to its final state
    started: float = field(default_factory=time.monotonic)
    cancelled_at: int | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None

    def _at(self, share: float) -> int:
        return int(self.created + share * self.duration)

    def _reached(self, share: float) -> bool:
        return time.monotonic() - self.started >= share * self.duration

    def status(self) -> str:
        if self.cancelled_at is not None:
            return "cancelled"
        if not self._reached(_VALIDATED):
            return "validating"
        if self.run is None:
            return "failed"
        if not self._reached(_PROCESSED):
            return "in_progress"
        return "completed" if self._reached(1.0) else "finalizing"

    def settle(self, files: dict[str, StoredFile]) -> str:
        """Its status now; once completed, it has left its output file (and error file, if a
        line failed)."""
        status = self.status()
        if status != "completed" or self.run is None or self.output_file_id is not None:
            return status
        name = self.batch_id + "_{}.jsonl"
        output = add_file(files, _jsonl(self.run.output), name.format("output"), "batch_output")
        self.output_file_id = output.file_id
        if self.run.failed:
            failed = add_file(files, _jsonl(self.run.failed), name.format("error"), "batch_output")
            self.error_file_id = failed.file_id
        return status

    def view(self, files: dict[str, StoredFile]) -> dict[str, Any]:
        """The Batch object as of now."""
        return self.body(self.settle(files))

    def _counts(self, status: str) -> dict[str, int]:
        total = 0 if status in ("validating", "failed") else self.total
        if self.run is None or status not in ("finalizing", "completed"):
            return {"total": total, "completed": 0, "failed": 0}
        return {"total": total, "completed": len(self.run.output), "failed": len(self.run.failed)}

    def body(self, status: str) -> dict[str, Any]:
        """The Batch object showing ``status``."""
        started = status in ("in_progress", "finalizing", "completed")
        finalized = status in ("finalizing", "completed")
        completed, failed = status == "completed", status == "failed"
        return {
            "id": self.batch_id,
            "object": "batch",
            "endpoint": self.endpoint,
            "model": self.model,
            "errors": {"object": "list", "data": self.problems} if self.problems else None,
            "input_file_id": self.input_file_id,
            "completion_window": "24h",
            "status": status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": int(self.created),
            "in_progress_at": self._at(_VALIDATED) if started else None,
            "expires_at": int(self.created) + _EXPIRY,
            "finalizing_at": self._at(_PROCESSED) if finalized else None,
            "completed_at": self._at(1.0) if completed else None,
            "failed_at": self._at(_VALIDATED) if failed else None,
            "expired_at": None,
            "cancelling_at": self.cancelled_at,
            "cancelled_at": self.cancelled_at if status == "cancelled" else None,
            "request_counts": self._counts(status),
            # Only a completed batch has spent tokens (a cancel stops it before any line).
            "usage": self.run.usage() if self.run and completed else usage_block({}),
            "metadata": self.metadata,
        }

    def cancel(self, files: dict[str, StoredFile]) -> dict[str, Any]:
        """Cancel it (at once: no line is answered); the answer shows it `cancelling`."""
        status = self.settle(files)
        if status in ("cancelling", "cancelled"):
            return self.body(status)
        if status in ("completed", "failed", "expired"):
            message = f"Cannot cancel a batch with status '{status}'."
            raise errors.bad_request(message)
        self.cancelled_at = int(time.time())
        return self.body("cancelling")


def _jsonl(lines: list[str]) -> bytes:
    return "".join(line + "\n" for line in lines).encode()


def _bad(message: str, param: str | None) -> errors.ApiError:
    return errors.bad_request(message, param)


def _metadata(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    valid = isinstance(value, dict) and len(value) <= 16
    if not valid or not all(
        isinstance(k, str) and isinstance(v, str) and len(k) <= 64 and len(v) <= 512
        for k, v in value.items()
    ):
        raise _bad(
            "'metadata' must be at most 16 string pairs (keys <= 64, values <= 512).", "metadata"
        )
    return dict(value)


def _input_file(files: dict[str, StoredFile], file_id: Any) -> StoredFile:
    if not isinstance(file_id, str) or not file_id:
        raise _bad("Missing required parameter: 'input_file_id'.", "input_file_id")
    stored = files.get(file_id)
    if stored is None:
        raise _bad(f"Invalid 'input_file_id': '{file_id}'. No such file object.", "input_file_id")
    if stored.purpose != "batch":
        message = (
            f"Invalid 'input_file_id': '{file_id}'. The file was uploaded with purpose "
            f"'{stored.purpose}'; a batch's input file must have purpose 'batch'."
        )
        raise _bad(message, "input_file_id")
    return stored


def _endpoint(value: Any) -> str:
    if value not in ENDPOINTS:
        allowed = ", ".join(f"'{e}'" for e in ENDPOINTS if e.startswith("/v1"))
        raise _bad(f"Invalid 'endpoint': {value!r}. Supported values are: {allowed}.", "endpoint")
    return str(value)


def create_batch(
    files: dict[str, StoredFile], body: Any, azure: bool, natural: int, duration_ms: float
) -> Batch:
    """A new batch from a create call's body (raises ApiError 400 for a body OpenAI refuses; a
    malformed input file makes a batch that fails instead)."""
    if not isinstance(body, dict):
        raise _bad("We could not parse the JSON body of your request.", None)
    stored = _input_file(files, body.get("input_file_id"))
    endpoint = _endpoint(body.get("endpoint"))
    if body.get("completion_window") != "24h":
        raise _bad("Invalid 'completion_window': only '24h' is supported.", "completion_window")
    metadata = _metadata(body.get("metadata"))
    lines, problems = parse_lines(stored.data, endpoint)
    operation = ENDPOINTS[endpoint]
    run = None if problems else run_lines(lines, operation, azure, natural)
    return Batch(
        batch_id="batch_" + uuid.uuid4().hex,
        endpoint=endpoint,
        input_file_id=stored.file_id,
        metadata=metadata,
        model=lines[0].model if lines else None,
        total=len(lines),
        run=run,
        problems=problems,
        created=time.time(),
        duration=duration_ms / 1000,
    )


def keep(batches: dict[str, Batch], batch: Batch) -> None:
    while len(batches) >= BATCHES_LIMIT:
        batches.pop(next(iter(batches)))
    batches[batch.batch_id] = batch


def find_batch(batches: dict[str, Batch], batch_id: str) -> Batch:
    batch = batches.get(batch_id)
    if batch is None:
        message = f"No batch found with id '{batch_id}'."
        raise errors.ApiError(404, errors.openai_body(message, "invalid_request_error", None, "id"))
    return batch


def list_batches(
    batches: dict[str, Batch], files: dict[str, StoredFile], query: dict[str, str]
) -> Any:
    """``GET /batches``: newest first, ``limit`` (1 to 100, default 20) after ``after``."""
    newest = [batch.view(files) for batch in reversed(batches.values())]
    return page(newest, query.get("limit", "20"), query.get("after"), 100)
