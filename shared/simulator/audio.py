"""WAV audio: a short valid WAV to upload or to answer speech with (``wav_bytes``), and the
duration of an uploaded one from its RIFF header (``wav_duration``)."""

from __future__ import annotations

import math
import struct
import sys
from array import array

SAMPLE_WIDTH = 2  # bytes: 16-bit PCM, mono
_PERIOD = 40  # samples per cycle of the tone (400 Hz at 16 kHz)
_AMPLITUDE = 8000


def _cycle() -> bytes:
    samples = array(
        "h", (round(_AMPLITUDE * math.sin(2 * math.pi * i / _PERIOD)) for i in range(_PERIOD))
    )
    if sys.byteorder == "big":  # pragma: no cover
        samples.byteswap()
    return samples.tobytes()


_CYCLE = _cycle()


def pcm_bytes(seconds: float, rate: int = 16000) -> bytes:
    """``seconds`` of a steady tone as raw 16-bit little-endian mono samples (no header)."""
    frames = max(0, round(seconds * rate))
    whole = _CYCLE * (frames // _PERIOD + 1)
    return whole[: frames * SAMPLE_WIDTH]


def wav_header(data_size: int, rate: int) -> bytes:
    """The 44-byte RIFF/WAVE header of 16-bit mono PCM with ``data_size`` bytes of samples."""
    byte_rate = rate * SAMPLE_WIDTH
    fmt = struct.pack("<HHIIHH", 1, 1, rate, byte_rate, SAMPLE_WIDTH, 8 * SAMPLE_WIDTH)
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_size)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", data_size)
    )


def wav_bytes(seconds: float, rate: int = 16000) -> bytes:
    """A valid WAV file: ``seconds`` of a 16-bit mono tone at ``rate`` Hz."""
    samples = pcm_bytes(seconds, rate)
    return wav_header(len(samples), rate) + samples


def wav_duration(data: bytes) -> float | None:
    """The duration in seconds of a RIFF/WAVE file (its data chunk's size over the byte rate of
    its fmt chunk), or None if ``data`` is not one."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    byte_rate: int | None = None
    at = 12
    while at + 8 <= len(data):
        kind = data[at : at + 4]
        size = int.from_bytes(data[at + 4 : at + 8], "little")
        body = at + 8
        if kind == b"fmt " and size >= 16 and body + 16 <= len(data):
            byte_rate = int.from_bytes(data[body + 8 : body + 12], "little")
        elif kind == b"data":
            if not byte_rate:
                return None
            # A streamed WAV may give a placeholder size: count what actually arrived.
            return min(size, len(data) - body) / byte_rate
        at = body + size + (size & 1)  # chunks are padded to an even size
    return None
