"""Audio transcriptions and translations (`/audio/transcriptions`, `/audio/translations`): the
multipart request (a WAV file, its duration read from its header) and whisper-1's answers in
each `response_format`: json, text, srt, verbose_json and vtt."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from . import errors
from .audio import wav_duration
from .pipeline import admit, generate, ok, reset_response, resets
from .state import Call, SimState
from .uploads import Form, require_form
from .wire import dumps

_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
_TEXT_TYPES = {"text": "text/plain", "srt": "application/x-subrip", "vtt": "text/vtt"}
_LANGUAGES = {"en": "english", "fr": "french", "de": "german", "es": "spanish", "it": "italian"}
_SEGMENT_SECONDS = 5.0
_MIN_SECONDS = 0.1


@dataclass(frozen=True, slots=True)
class AudioRequest:
    task: str  # "transcribe" or "translate"
    duration: float  # seconds
    language: str  # the language's name, as verbose_json gives it
    response_format: str


def _duration(form: Form) -> float:
    parts = form.files("file")
    if len(parts) != 1:
        raise errors.bad_request("Missing required parameter: 'file'.", "file")
    duration = wav_duration(parts[0].data)
    if duration is None:
        message = "Audio file might be corrupted or unsupported"
        raise errors.bad_request(message, "file", "invalid_value")
    if duration < _MIN_SECONDS:
        message = f"Audio file is too short. Minimum audio length is {_MIN_SECONDS} seconds."
        raise errors.bad_request(message, "file", "audio_too_short")
    return duration


def _check_temperature(value: str | None) -> None:
    try:
        valid = value is None or 0 <= float(value) <= 1
    except ValueError:
        valid = False
    if not valid:
        raise errors.bad_request("'temperature' must be a number between 0 and 1", "temperature")


def parse_audio(form: Form, operation: str) -> AudioRequest:
    """Validate a transcription or translation form (raises ApiError as OpenAI answers)."""
    fields = form.fields
    response_format = fields.get("response_format", "json")
    if response_format not in _FORMATS:
        message = f"Invalid value for 'response_format': must be one of {', '.join(_FORMATS)}."
        raise errors.bad_request(message, "response_format", "invalid_value")
    _check_temperature(fields.get("temperature"))
    translate = operation == "translations"
    code = "en" if translate else fields.get("language", "en")
    return AudioRequest(
        task="translate" if translate else "transcribe",
        duration=_duration(form),
        language=_LANGUAGES.get(code, code),
        response_format=response_format,
    )


def _segments(duration: float) -> list[dict[str, Any]]:
    """One segment every five seconds; each says which stretch of the audio it stands for."""
    count = max(1, math.ceil(duration / _SEGMENT_SECONDS))
    segments = []
    for index in range(count):
        start = index * _SEGMENT_SECONDS
        end = min(duration, start + _SEGMENT_SECONDS)
        text = f" Simulated speech from {start:.1f} to {end:.1f} seconds."
        segments.append(
            {
                "id": index,
                "seek": int(start * 100),
                "start": start,
                "end": round(end, 3),
                "text": text,
                "tokens": list(range(50364, 50364 + len(text.split()))),
                "temperature": 0.0,
                "avg_logprob": -0.25,
                "compression_ratio": 1.0,
                "no_speech_prob": 0.01,
            }
        )
    return segments


def _timestamp(seconds: float, separator: str) -> str:
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _captions(segments: list[dict[str, Any]], vtt: bool) -> str:
    """The segments as SubRip (numbered cues, comma before the milliseconds) or WebVTT."""
    mark = "." if vtt else ","
    cues = []
    for segment in segments:
        times = f"{_timestamp(segment['start'], mark)} --> {_timestamp(segment['end'], mark)}"
        cue = f"{times}\n{segment['text'].strip()}\n"
        cues.append(cue if vtt else f"{segment['id'] + 1}\n{cue}")
    return ("WEBVTT\n\n" if vtt else "") + "\n".join(cues)


def render(request: AudioRequest) -> tuple[bytes, str]:
    """The answer's body and content type."""
    segments = _segments(request.duration)
    text = "".join(segment["text"] for segment in segments).strip()
    usage = {"type": "duration", "seconds": math.ceil(request.duration)}
    kind = request.response_format
    if kind in ("srt", "vtt"):
        return _captions(segments, kind == "vtt").encode(), _TEXT_TYPES[kind]
    if kind == "text":
        return (text + "\n").encode(), _TEXT_TYPES[kind]
    answer: dict[str, Any] = {"text": text}
    if kind == "verbose_json":
        answer = {
            "task": request.task,
            "language": request.language,
            "duration": round(request.duration, 3),
            "text": text,
            "segments": segments,
        }
    if request.task == "transcribe":  # whisper-1 bills transcriptions by the second
        answer["usage"] = usage
    return dumps(answer).encode(), "application/json"


async def transcribe(call: Call, state: SimState) -> web.StreamResponse:
    """`/audio/transcriptions` and `/audio/translations`."""
    request = parse_audio(require_form(call.form), call.operation)
    await admit(call, state)
    await generate(state.config, 0)
    if resets(call):
        return reset_response(call)
    body, content_type = render(request)
    charset = None if content_type == "application/json" else "utf-8"
    return ok(call, body, content_type, charset)
