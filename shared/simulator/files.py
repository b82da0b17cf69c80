"""Files kept in memory (`/files`): each upload's bytes, its FileObject, the list with its
cursor, and the answers of retrieve, content and delete."""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass
from typing import Any

from . import errors

# The purposes an upload may name; batch_output files are only ever the simulator's own.
UPLOAD_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
FILES_LIMIT = 10_000  # kept at most; the oldest goes first
_LIST_LIMIT = 10_000


@dataclass(slots=True)
class StoredFile:
    file_id: str
    filename: str
    purpose: str
    data: bytes
    sha256: str
    created_at: int

    def body(self) -> dict[str, Any]:
        """Its FileObject."""
        return {
            "id": self.file_id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "status_details": None,
        }

    def summary(self) -> dict[str, Any]:
        """What ``GET /_sim/files`` shows of it."""
        return {
            "id": self.file_id,
            "bytes": len(self.data),
            "sha256": self.sha256,
            "purpose": self.purpose,
            "filename": self.filename,
        }

    @property
    def content_type(self) -> str:
        return (
            "application/jsonl" if self.filename.endswith(".jsonl") else "application/octet-stream"
        )


def add_file(
    files: dict[str, StoredFile], data: bytes, filename: str, purpose: str, sha256: str = ""
) -> StoredFile:
    while len(files) >= FILES_LIMIT:
        files.pop(next(iter(files)))
    stored = StoredFile(
        file_id="file-" + uuid.uuid4().hex,
        filename=filename,
        purpose=purpose,
        data=data,
        sha256=sha256 or hashlib.sha256(data).hexdigest(),
        created_at=int(time.time()),
    )
    files[stored.file_id] = stored
    return stored


def check_purpose(purpose: str | None, filename: str) -> str:
    """The upload's purpose, or the 400 OpenAI answers for it."""
    if purpose is None:
        raise errors.bad_request("Missing required parameter: 'purpose'.", "purpose")
    if purpose not in UPLOAD_PURPOSES:
        message = (
            f"Invalid value for 'purpose': '{purpose}'. "
            f"Supported values are: {', '.join(repr(p) for p in UPLOAD_PURPOSES)}."
        )
        raise errors.bad_request(message, "purpose", "invalid_value")
    if purpose == "batch" and not filename.endswith(".jsonl"):
        raise errors.bad_request("Invalid file format for Batch API. Must be .jsonl", "file")
    return purpose


def find_file(files: dict[str, StoredFile], file_id: str) -> StoredFile:
    stored = files.get(file_id)
    if stored is None:
        message = f"No such File object: {file_id}"
        raise errors.ApiError(404, errors.openai_body(message, "invalid_request_error", None, "id"))
    return stored


def delete_file(files: dict[str, StoredFile], file_id: str) -> dict[str, Any]:
    find_file(files, file_id)
    del files[file_id]
    return {"id": file_id, "object": "file", "deleted": True}


def _limit(value: str | None, high: int) -> int:
    if value is None:
        return high
    if not value.isdigit() or not 1 <= int(value) <= high:
        raise errors.bad_request(f"'limit' must be an integer between 1 and {high}", "limit")
    return int(value)


def page(items: list[dict[str, Any]], limit: str | None, after: str | None, high: int) -> Any:
    """One page of a list answer: the items after the one with id ``after``, ``limit`` of them."""
    count = _limit(limit, high)
    if after is not None:
        ids = [item["id"] for item in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    data = items[:count]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": len(items) > count,
    }


def list_files(files: dict[str, StoredFile], query: dict[str, str]) -> Any:
    """``GET /files``: newest first by default (``order=asc`` for oldest first)."""
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise errors.bad_request("'order' must be one of 'asc' or 'desc'", "order")
    chosen = [f for f in files.values() if query.get("purpose") in (None, f.purpose)]
    if order == "desc":
        chosen.reverse()
    return page([f.body() for f in chosen], query.get("limit"), query.get("after"), _LIST_LIMIT)
