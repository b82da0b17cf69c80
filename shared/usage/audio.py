"""How long an uploaded WAV file plays, read from its header and its size as it streams by:
what a transcription is priced on when the upstream's answer does not say."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator, Callable

HEAD_BYTES = 4096  # the RIFF header and the chunks before `data` fit in this


def wav_seconds(head: bytes, size: int) -> float:
    """Seconds of audio in a WAV file of `size` bytes starting with `head`; 0.0 when it is not
    a WAV file the gateway can read."""
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return 0.0
    at, byte_rate = 12, 0
    while at + 8 <= len(head):
        kind, length = head[at : at + 4], struct.unpack_from("<I", head, at + 4)[0]
        if kind == b"fmt " and at + 16 <= len(head):
            byte_rate = struct.unpack_from("<I", head, at + 16)[0]
        if kind == b"data":
            data = min(length, size - at - 8)
            return round(data / byte_rate, 3) if byte_rate and data > 0 else 0.0
        at += 8 + length + (length & 1)
    return 0.0


async def measured(
    data: AsyncIterator[bytes], done: Callable[[float], None]
) -> AsyncIterator[bytes]:
    """`data` passed through unchanged; at its end, `done` gets its length in seconds."""
    head, size = bytearray(), 0
    async for piece in data:
        if len(head) < HEAD_BYTES:
            head += piece[: HEAD_BYTES - len(head)]
        size += len(piece)
        yield piece
    done(wav_seconds(bytes(head), size))
