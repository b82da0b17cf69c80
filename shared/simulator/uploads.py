"""Multipart (`multipart/form-data`) request bodies, read streamed part by part: the text fields,
and each file part with its size and SHA-256 (what arrived, for byte-for-byte checks)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web

from . import errors

MiB = 1024 * 1024
# The largest file part each operation takes (OpenAI: 512 MB files, 25 MB audio, 50 MB images).
_LIMITS = {"files": 512 * MiB, "image_edits": 50 * MiB}
_DEFAULT_LIMIT = 25 * MiB
_FIELD_LIMIT = 1 * MiB  # a text field
_READ_SIZE = 64 * 1024


@dataclass(frozen=True, slots=True)
class Upload:
    """One file part as received."""

    name: str  # the form field, e.g. "file", "image[]"
    filename: str
    content_type: str
    data: bytes
    sha256: str

    @property
    def size(self) -> int:
        return len(self.data)

    def summary(self) -> dict[str, Any]:
        return {
            "field": self.name,
            "filename": self.filename,
            "content_type": self.content_type,
            "bytes": self.size,
            "sha256": self.sha256,
        }


@dataclass(slots=True)
class Form:
    fields: dict[str, str] = field(default_factory=dict)
    uploads: list[Upload] = field(default_factory=list)

    def files(self, *names: str) -> list[Upload]:
        """The file parts sent under any of ``names``, in order."""
        return [upload for upload in self.uploads if upload.name in names]


def is_multipart(request: web.Request) -> bool:
    return request.content_type == "multipart/form-data"


def require_form(form: Form | None) -> Form:
    """A multipart operation's form (400 for a body that was not multipart)."""
    if form is None:
        raise errors.bad_request("The request must be multipart/form-data.")
    return form


def _too_large(limit: int) -> errors.ApiError:
    message = f"Maximum content size limit ({limit}) exceeded."
    body = errors.openai_body(message, "invalid_request_error", "request_too_large")
    return errors.ApiError(413, body)


async def _read_part(part: BodyPartReader, limit: int) -> tuple[bytes, str]:
    """The part's bytes and their SHA-256, read a chunk at a time."""
    digest = hashlib.sha256()
    data = bytearray()
    # The bytes as sent: clients send binary parts (no Content-Transfer-Encoding to undo).
    while chunk := await part.read_chunk(_READ_SIZE):
        digest.update(chunk)
        data += chunk
        if len(data) > limit:
            raise _too_large(limit)
    return bytes(data), digest.hexdigest()


async def read_form(request: web.Request, operation: str) -> Form:
    """The form of a multipart request (raises ApiError 400 on a malformed one, 413 on a part
    above the operation's limit)."""
    form = Form()
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader) or not part.name:
                raise errors.bad_request("Nested or unnamed multipart parts are not supported.")
            if part.filename is None:
                data, _ = await _read_part(part, _FIELD_LIMIT)
                form.fields[part.name] = data.decode("utf-8", "replace")
                continue
            data, sha256 = await _read_part(part, _LIMITS.get(operation, _DEFAULT_LIMIT))
            content_type = part.headers.get("Content-Type", "application/octet-stream")
            form.uploads.append(Upload(part.name, part.filename, content_type, data, sha256))
    except (ValueError, AssertionError) as exc:  # aiohttp's complaints about a broken body
        raise errors.bad_request(f"Could not parse multipart form: {exc}") from exc
    return form
