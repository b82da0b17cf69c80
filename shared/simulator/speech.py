"""Text to speech (`/audio/speech`): the request's checks, and its audio streamed in several
chunks: a tone whose length grows with the input (0.06 s a character at speed 1, capped)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from . import errors
from .audio import pcm_bytes, wav_header
from .pipeline import admit, generate
from .state import Call, SimState
from .streaming import close_connection

MAX_INPUT = 4096  # characters
SECONDS_PER_CHARACTER = 0.06
MAX_SECONDS = 30.0
RATE = 24_000  # Hz, as OpenAI's speech
CHUNKS = 8  # an answer is sent in about this many pieces
VOICES = frozenset(
    {"alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer"}
    | {"verse", "marin", "cedar"}
)
# The simulator answers WAV bytes under every format's type but pcm's (raw samples, no header):
# a simulator has no encoder, and a client relaying the bytes cannot tell.
CONTENT_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}


@dataclass(frozen=True, slots=True)
class SpeechRequest:
    text: str
    response_format: str
    speed: float

    @property
    def seconds(self) -> float:
        return min(MAX_SECONDS, len(self.text) * SECONDS_PER_CHARACTER / self.speed)

    def audio(self) -> bytes:
        samples = pcm_bytes(self.seconds, RATE)
        return (
            samples if self.response_format == "pcm" else wav_header(len(samples), RATE) + samples
        )


def _text(body: dict[str, Any]) -> str:
    text = body.get("input")
    if text is None:
        raise errors.bad_request("Missing required parameter: 'input'.", "input")
    if not isinstance(text, str) or not text:
        raise errors.bad_request("'input' must be a non-empty string", "input")
    if len(text) > MAX_INPUT:
        message = (
            "Invalid 'input': string too long. Expected a string with maximum length "
            f"{MAX_INPUT}, but got a string with length {len(text)} instead."
        )
        raise errors.bad_request(message, "input", "string_above_max_length")
    return text


def _speed(body: dict[str, Any]) -> float:
    speed = body.get("speed", 1.0)
    if isinstance(speed, bool) or not isinstance(speed, int | float) or not 0.25 <= speed <= 4:
        raise errors.bad_request("'speed' must be a number between 0.25 and 4.0", "speed")
    return float(speed)


def parse_speech(body: dict[str, Any]) -> SpeechRequest:
    """Validate a speech request (raises ApiError as OpenAI answers)."""
    text = _text(body)
    voice = body.get("voice")
    if voice is None:
        raise errors.bad_request("Missing required parameter: 'voice'.", "voice")
    if voice not in VOICES:
        message = f"Invalid value for 'voice': {voice!r}. Supported: {', '.join(sorted(VOICES))}."
        raise errors.bad_request(message, "voice", "invalid_value")
    response_format = body.get("response_format", "mp3")
    if response_format not in CONTENT_TYPES:
        message = f"Invalid value for 'response_format': one of {', '.join(CONTENT_TYPES)}."
        raise errors.bad_request(message, "response_format", "invalid_value")
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise errors.bad_request("'instructions' must be a string", "instructions")
    return SpeechRequest(text, response_format, _speed(body))


async def speak(call: Call, state: SimState) -> web.StreamResponse:
    """`/audio/speech`: the audio, chunked; a reset fault drops the connection after that many
    chunks."""
    request = parse_speech(call.body)
    await admit(call, state)
    await generate(state.config, 0)
    audio = request.audio()
    size = max(1, math.ceil(len(audio) / CHUNKS))
    response = web.StreamResponse(headers={"Content-Type": CONTENT_TYPES[request.response_format]})
    response.enable_chunked_encoding()
    reset_after = call.fault.reset_after_chunks if call.fault else None
    call.record["status"] = 200
    call.record["chunks_sent"] = 0
    await response.prepare(call.request)
    try:
        for sent, at in enumerate(range(0, len(audio), size)):
            if reset_after is not None and sent >= reset_after:
                close_connection(call)
                return response
            await response.write(audio[at : at + size])
            call.record["chunks_sent"] = sent + 1
        await response.write_eof()
    except ConnectionResetError:
        call.record["client_disconnected"] = True
    return response
