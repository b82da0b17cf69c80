"""The multipart reader against bodies written by httpx (what the openai SDK sends), fed in
chunks of every size, and the writer read back by the reader."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator

import httpx
import pytest

from shared.errors import GatewayError
from shared.http.multipart import FormReader, FormWriter, Part, Spool, boundary_of, limited


def _httpx_body(
    fields: dict[str, str], files: dict[str, tuple[str, bytes, str]]
) -> tuple[bytes, str]:
    request = httpx.Request("POST", "http://127.0.0.1/", data=fields, files=files)
    return request.read(), request.headers["content-type"]


async def _chunks(body: bytes, size: int) -> AsyncIterator[bytes]:
    for at in range(0, len(body), size):
        yield body[at : at + size]


async def _read_all(body: bytes, content_type: str, size: int) -> list[tuple[Part, bytes]]:
    reader = FormReader(_chunks(body, size), boundary_of(content_type))
    parts = []
    while (part := await reader.next_part()) is not None:
        data = b"".join([piece async for piece in reader.data()])
        parts.append((part, data))
    return parts


@pytest.mark.parametrize("size", [1, 2, 7, 64, 4096, 1 << 20])
def test_fields_and_files_come_back_exactly_in_chunks_of_any_size(size: int) -> None:
    audio = os.urandom(50_000) + b"\r\n--not-the-boundary\r\n" + os.urandom(100)
    body, content_type = _httpx_body(
        {"model": "whisper-1", "language": "zh"}, {"file": ('a "b".wav', audio, "audio/wav")}
    )
    parts = asyncio.run(_read_all(body, content_type, size))
    assert [(p.name, p.filename) for p, _ in parts] == [
        ("model", None),
        ("language", None),
        ("file", "a %22b%22.wav"),
    ]
    assert parts[0][1] == b"whisper-1" and parts[1][1] == b"zh"
    assert hashlib.sha256(parts[2][1]).digest() == hashlib.sha256(audio).digest()


def test_what_the_writer_writes_the_reader_reads_including_a_spooled_file() -> None:
    async def scenario() -> list[tuple[Part, bytes]]:
        writer, spool = FormWriter(), Spool()
        data = os.urandom(3 * 1024 * 1024)  # past the spool's in-memory part
        part = Part("file", "batch.jsonl", "application/jsonl")
        await spool.keep(part, _chunks(data, 100_000))
        body = writer.field("purpose", "batch") + writer.file_head(part)
        body += b"".join([p async for p in spool.read(*spool.parts[0][1:])])
        body += writer.file_end() + writer.end()
        spool.close()
        parts = await _read_all(body, writer.content_type, 3333)
        assert parts[1][1] == data
        return parts

    parts = asyncio.run(scenario())
    assert [(p.name, p.filename, p.content_type) for p, _ in parts] == [
        ("purpose", None, "application/octet-stream"),
        ("file", "batch.jsonl", "application/jsonl"),
    ]


def test_a_body_cut_short_or_over_the_limit_is_refused() -> None:
    body, content_type = _httpx_body({"model": "m"}, {"file": ("a.wav", b"x" * 1000, "audio/wav")})
    with pytest.raises(GatewayError) as cut:
        asyncio.run(_read_all(body[:-20], content_type, 64))
    assert cut.value.status == 400 and cut.value.code == "invalid_multipart"

    async def over() -> None:
        reader = FormReader(limited(_chunks(body, 64), 500), boundary_of(content_type))
        while await reader.next_part() is not None:
            pass

    with pytest.raises(GatewayError) as large:
        asyncio.run(over())
    assert large.value.status == 413 and large.value.code == "request_too_large"


def test_only_multipart_bodies_with_a_boundary_are_read() -> None:
    for content_type in (None, "application/json", "multipart/form-data"):
        with pytest.raises(GatewayError) as refused:
            boundary_of(content_type)
        assert refused.value.status == 400
