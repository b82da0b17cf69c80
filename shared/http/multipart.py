"""multipart/form-data read part by part as it arrives, and written again for the upstream.

An upload is never held whole: its simple fields (model, purpose, ...) are read into memory,
at most FIELD_BYTES each; its file parts are streamed through, or spooled to a temporary file
when a field the gateway needs comes after them.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import IO

from shared.errors import GatewayError, bad_request

FIELD_BYTES = 64 * 1024  # a form field the gateway reads (a model name, a prompt)
_HEADER_BYTES = 16 * 1024
_READ = 64 * 1024
_BOUNDARY = re.compile(r'boundary="?([^";]{1,200})"?', re.IGNORECASE)
_NAME = re.compile(r'(?:^|;)\s*name="([^"]*)"', re.IGNORECASE)
_FILENAME = re.compile(r'(?:^|;)\s*filename="([^"]*)"', re.IGNORECASE)


def boundary_of(content_type: str | None) -> bytes:
    if not content_type or not content_type.lower().startswith("multipart/form-data"):
        raise bad_request("The request body must be multipart/form-data.", "invalid_content_type")
    match = _BOUNDARY.search(content_type)
    if match is None:
        raise bad_request("The multipart body names no boundary.", "invalid_multipart")
    return match.group(1).encode("latin-1")


def too_large(limit: int) -> GatewayError:
    return GatewayError(
        413,
        f"The request body is larger than this gateway accepts ({limit} bytes).",
        code="request_too_large",
    )


async def limited(chunks: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    """The body's chunks, refused with 413 once they pass `limit` bytes."""
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        if chunk:
            yield chunk


@dataclass(frozen=True)
class Part:
    name: str
    filename: str | None  # None: a simple field
    content_type: str


def _malformed() -> GatewayError:
    return bad_request("The multipart body is malformed.", "invalid_multipart")


class FormReader:
    """The parts of one multipart body, in order: `next_part()` for each part's headers, then
    `read()` for a field's value or `data()` for a file's bytes (an unread part is skipped)."""

    def __init__(self, chunks: AsyncIterator[bytes], boundary: bytes) -> None:
        self._chunks = chunks
        self._delimiter = b"\r\n--" + boundary
        self._buf = bytearray(b"\r\n")  # so that the first delimiter looks like every other
        self._eof = False
        self._in_part = False
        self._started = False
        self._done = False

    async def next_part(self) -> Part | None:
        """The next part's headers; None after the closing delimiter."""
        if self._in_part:
            async for _ in self.data():
                pass
        elif not self._started:  # skip any preamble, up to the first delimiter
            at = await self._find(self._delimiter, _HEADER_BYTES)
            del self._buf[: at + len(self._delimiter)]
            self._started = True
        if self._done:
            return None
        await self._want(2)
        if self._buf[:2] == b"--":
            self._done = True
            return None
        end = await self._find(b"\r\n\r\n", _HEADER_BYTES)
        head = bytes(self._buf[:end]).decode("utf-8", "replace")
        del self._buf[: end + 4]
        self._in_part = True
        return _part(head)

    async def read(self, limit: int = FIELD_BYTES) -> bytes:
        """The current part's whole value, at most `limit` bytes."""
        value = bytearray()
        async for piece in self.data():
            value += piece
            if len(value) > limit:
                raise bad_request(f"A form field is longer than {limit} bytes.", "field_too_long")
        return bytes(value)

    async def data(self) -> AsyncIterator[bytes]:
        """The current part's bytes as they arrive, ending at the next delimiter."""
        if not self._in_part:
            return
        keep = len(self._delimiter) + 1
        while True:
            at = self._buf.find(self._delimiter)
            if at >= 0:
                piece = bytes(self._buf[:at])
                del self._buf[: at + len(self._delimiter)]
                self._in_part = False
                if piece:
                    yield piece
                return
            if len(self._buf) > keep:
                piece = bytes(self._buf[:-keep])
                del self._buf[:-keep]
                yield piece
            if not await self._more():
                raise _malformed()

    async def _want(self, count: int) -> None:
        while len(self._buf) < count:
            if not await self._more():
                raise _malformed()

    async def _find(self, needle: bytes, limit: int) -> int:
        while True:
            at = self._buf.find(needle)
            if at >= 0:
                return at
            if len(self._buf) > limit or not await self._more():
                raise _malformed()

    async def _more(self) -> bool:
        if self._eof:
            return False
        try:
            chunk = await anext(self._chunks)
        except StopAsyncIteration:
            self._eof = True
            return False
        self._buf += chunk
        return True


def _part(head: str) -> Part:
    disposition, content_type = "", "application/octet-stream"
    for line in head.split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-disposition":
            disposition = value.strip()
        elif name.strip().lower() == "content-type":
            content_type = value.strip()
    found = _NAME.search(disposition)
    if found is None:
        raise _malformed()
    filename = _FILENAME.search(disposition)
    return Part(found.group(1), filename.group(1) if filename else None, content_type)


class Spool:
    """File parts kept on disk (the first MiB in memory) until the form has been read whole."""

    def __init__(self) -> None:
        self._file: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=1024 * 1024)  # noqa: SIM115
        self.parts: list[tuple[Part, int, int]] = []  # (part, offset, size)

    async def keep(self, part: Part, data: AsyncIterator[bytes]) -> None:
        offset = self._file.seek(0, os.SEEK_END)
        async for piece in data:
            self._file.write(piece)
        self.parts.append((part, offset, self._file.tell() - offset))

    def write(self, data: bytes) -> None:
        """Bytes of a file written here by the gateway (see `seal`)."""
        self._file.seek(0, os.SEEK_END)
        self._file.write(data)

    def seal(self, part: Part) -> None:
        """Everything written so far is the one file `part`."""
        self.parts = [(part, 0, self._file.seek(0, os.SEEK_END))]

    async def read(self, offset: int, size: int) -> AsyncIterator[bytes]:
        left = size
        while left:
            self._file.seek(offset + size - left)
            piece = self._file.read(min(left, _READ))
            left -= len(piece)
            yield piece

    def close(self) -> None:
        self._file.close()


class FormWriter:
    """A multipart/form-data body of our own, written as it is sent."""

    def __init__(self) -> None:
        self.boundary = "tollgate-" + os.urandom(12).hex()

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def field(self, name: str, value: str) -> bytes:
        head = f'--{self.boundary}\r\nContent-Disposition: form-data; name="{_quoted(name)}"'
        return (head + "\r\n\r\n").encode() + value.encode() + b"\r\n"

    def file_head(self, part: Part) -> bytes:
        filename = _quoted(part.filename or "file")
        return (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{_quoted(part.name)}"; '
            f'filename="{filename}"\r\nContent-Type: {part.content_type}\r\n\r\n'
        ).encode()

    def file_end(self) -> bytes:
        return b"\r\n"

    def end(self) -> bytes:
        return f"--{self.boundary}--\r\n".encode()


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', "%22").replace("\r", " ").replace("\n", " ")
