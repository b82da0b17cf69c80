"""The simulator's audio (transcriptions, translations, speech) and image edits on `/v1`,
`/openai/v1` and Azure's deployments, over real HTTP on 127.0.0.1, driven by the official openai
SDK and, for raw answers and the `/_sim/` control API, by aiohttp."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import wave
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest

from shared.simulator.audio import wav_bytes, wav_duration
from shared.simulator.content import count_tokens
from shared.simulator.images import PNG
from tests.support.sim_control import KEY, SimControl, simulator_fixtures

API_VERSION = "2024-10-21"
AUTH = {"Authorization": f"Bearer {KEY}"}
CLIP_SECONDS = 2.3
SPEECH = "The quick brown fox jumps over the lazy dog."  # 44 characters: 2.64 s of audio
SPEECH_RATE = 24_000
PROMPT = "add a red hat"


class Sim(SimControl):
    async def post_form(
        self, path: str, fields: dict[str, str], files: dict[str, tuple[str, bytes]]
    ) -> tuple[int, str, Any]:
        form = aiohttp.FormData(default_to_multipart=True)
        for name, value in fields.items():
            form.add_field(name, value)
        for name, (filename, data) in files.items():
            form.add_field(name, data, filename=filename)
        async with self.http.post(self.url + path, data=form, headers=AUTH) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), await resp.read()

    async def uploads(self) -> list[dict[str, Any]]:
        status, body = await self.control("GET", "uploads")
        assert status == 200
        records: list[dict[str, Any]] = body["uploads"]
        return records

    async def reset(self) -> None:
        await super().reset()
        await self.control("DELETE", "uploads")


sim_server, sim = simulator_fixtures(Sim)
# openai-python marks audio.translations deprecated; the route is still the API's.
pytestmark = pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")


def clip(seconds: float = CLIP_SECONDS) -> tuple[str, bytes]:
    return ("clip.wav", wav_bytes(seconds))


def read_wav(data: bytes) -> tuple[int, int, int, int]:
    """(channels, sample width, rate, frames) of a WAV, read by the standard library."""
    with wave.open(io.BytesIO(data)) as audio:
        return audio.getnchannels(), audio.getsampwidth(), audio.getframerate(), audio.getnframes()


# The WAV helper


def test_wav_bytes_is_a_wav_of_the_asked_length() -> None:
    data = wav_bytes(1.5)
    assert read_wav(data) == (1, 2, 16000, 24000)
    assert wav_duration(data) == 1.5
    assert read_wav(wav_bytes(0.5, rate=8000))[2:] == (8000, 4000)
    assert data[44:] != bytes(len(data) - 44)  # a tone, not silence
    assert wav_duration(b"RIFF....WAVEjunk") is None and wav_duration(PNG) is None


# Transcriptions and translations


async def test_transcription_json_with_duration_usage(sim: Sim) -> None:
    raw = await sim.client().audio.transcriptions.with_raw_response.create(
        model="whisper-1", file=clip()
    )
    assert raw.headers["content-type"].startswith("application/json")
    assert raw.headers["x-request-id"].startswith("req_")
    wire = json.loads(raw.text)
    assert set(wire) == {"text", "usage"}
    assert wire["usage"] == {"type": "duration", "seconds": math.ceil(CLIP_SECONDS)}
    transcription = raw.parse()
    assert transcription.text == "Simulated speech from 0.0 to 2.3 seconds."
    assert transcription.usage is not None and transcription.usage.type == "duration"
    (record,) = await sim.requests()
    assert (record["operation"], record["status"]) == ("transcriptions", 200)
    assert record["body"] == {"model": "whisper-1"}


async def test_transcription_text_srt_and_vtt(sim: Sim) -> None:
    client = sim.client()
    text = await client.audio.transcriptions.create(
        model="whisper-1", file=clip(7), response_format="text"
    )
    assert isinstance(text, str)
    assert text.strip() == (
        "Simulated speech from 0.0 to 5.0 seconds. Simulated speech from 5.0 to 7.0 seconds."
    )
    srt = await client.audio.transcriptions.create(
        model="whisper-1", file=clip(7), response_format="srt"
    )
    assert srt.startswith("1\n00:00:00,000 --> 00:00:05,000\nSimulated speech from 0.0")
    assert "\n\n2\n00:00:05,000 --> 00:00:07,000\n" in srt
    vtt = await client.audio.transcriptions.with_raw_response.create(
        model="whisper-1", file=clip(7), response_format="vtt"
    )
    assert vtt.headers["content-type"].startswith("text/vtt")
    assert vtt.text.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:05.000\n")
    status, content_type, _ = await sim.post_form(
        "/v1/audio/transcriptions",
        {"model": "whisper-1", "response_format": "text"},
        {"file": clip()},
    )
    assert status == 200 and content_type.startswith("text/plain")


async def test_transcription_verbose_json(sim: Sim) -> None:
    verbose = await sim.client().audio.transcriptions.create(
        model="whisper-1", file=clip(12), response_format="verbose_json", language="fr"
    )
    assert (verbose.duration, verbose.language) == (12.0, "french")
    assert verbose.segments is not None
    assert [(s.id, s.start, s.end) for s in verbose.segments] == [
        (0, 0.0, 5.0),
        (1, 5.0, 10.0),
        (2, 10.0, 12.0),
    ]
    assert verbose.text == "".join(s.text for s in verbose.segments).strip()
    assert verbose.usage is not None and verbose.usage.seconds == 12
    assert (verbose.model_extra or {}).get("task") == "transcribe"


async def test_translations(sim: Sim) -> None:
    client = sim.client()
    translation = await client.audio.translations.create(model="whisper-1", file=clip())
    assert translation.text.startswith("Simulated speech")
    raw = await client.audio.translations.with_raw_response.create(
        model="whisper-1", file=clip(), response_format="verbose_json"
    )
    wire = json.loads(raw.text)
    assert (wire["task"], wire["language"], wire["duration"]) == ("translate", "english", 2.3)
    assert len(wire["segments"]) == 1
    assert (await sim.requests())[-1]["operation"] == "translations"


async def test_the_upload_arrives_byte_for_byte(sim: Sim) -> None:
    data = wav_bytes(40)  # 1.28 MB: above aiohttp's limit on a body read whole
    result = await sim.client().audio.transcriptions.create(
        model="whisper-1", file=("long.wav", data), prompt="names: Ada", temperature=0.2
    )
    assert result.usage is not None and result.usage.seconds == 40  # type: ignore[union-attr]
    (upload,) = await sim.uploads()
    assert upload["sha256"] == hashlib.sha256(data).hexdigest()
    assert (upload["bytes"], upload["field"], upload["filename"]) == (len(data), "file", "long.wav")
    assert upload["path"] == "/v1/audio/transcriptions"
    (record,) = await sim.requests()
    assert record["uploads"] == [{k: v for k, v in upload.items() if k in record["uploads"][0]}]
    assert record["body"] == {"model": "whisper-1", "prompt": "names: Ada", "temperature": "0.2"}


async def test_azure_deployments_and_v1(sim: Sim) -> None:
    azure = sim.azure()
    raw = await azure.audio.transcriptions.with_raw_response.create(model="whisper-1", file=clip())
    assert raw.headers["apim-request-id"] == raw.headers["x-request-id"]
    transcription = raw.parse()
    assert transcription.text.startswith("Simulated speech")
    translation = await azure.audio.translations.create(model="whisper-1", file=clip())
    assert translation.text
    v1 = await sim.client("/openai/v1").audio.transcriptions.create(model="whisper-1", file=clip())
    assert v1.text == transcription.text
    records = await sim.requests()
    assert [(r["path"], r["query"]) for r in records] == [
        ("/openai/deployments/whisper-1/audio/transcriptions", {"api-version": API_VERSION}),
        ("/openai/deployments/whisper-1/audio/translations", {"api-version": API_VERSION}),
        ("/openai/v1/audio/transcriptions", {}),
    ]
    assert records[0]["headers"]["api-key"] == KEY
    status, _, body = await sim.post_form(
        "/openai/deployments/whisper-1/audio/transcriptions", {}, {"file": clip()}
    )
    assert (status, json.loads(body)["error"]["code"]) == (404, "404")  # no api-version


async def test_audio_the_api_refuses(sim: Sim) -> None:
    client = sim.client()
    with pytest.raises(openai.BadRequestError) as not_wav:
        await client.audio.transcriptions.create(model="whisper-1", file=("x.png", PNG))
    assert (not_wav.value.param, not_wav.value.code) == ("file", "invalid_value")
    with pytest.raises(openai.BadRequestError) as short:
        await client.audio.transcriptions.create(model="whisper-1", file=clip(0.05))
    assert short.value.code == "audio_too_short"
    fields = {"model": "whisper-1", "response_format": "mp3", "temperature": "2"}
    status, _, body = await sim.post_form("/v1/audio/transcriptions", fields, {"file": clip()})
    assert (status, json.loads(body)["error"]["param"]) == (400, "response_format")
    fields["response_format"] = "json"
    status, _, body = await sim.post_form("/v1/audio/transcriptions", fields, {"file": clip()})
    assert (status, json.loads(body)["error"]["param"]) == (400, "temperature")
    with pytest.raises(openai.BadRequestError) as chat_model:
        await client.audio.transcriptions.create(model="gpt-4o", file=clip())
    assert chat_model.value.code == "model_not_supported"
    with pytest.raises(openai.NotFoundError):
        await client.audio.translations.create(model="whisper-9", file=clip())
    with pytest.raises(openai.BadRequestError) as azure_wrong:
        await sim.azure().audio.transcriptions.create(model="tts-1", file=clip())
    assert azure_wrong.value.code == "OperationNotSupported"
    status, _, body = await sim.post_form("/v1/audio/transcriptions", {}, {"file": clip()})
    assert (status, json.loads(body)["error"]["param"]) == (400, "model")
    status, _, body = await sim.post_form("/v1/audio/transcriptions", {"model": "whisper-1"}, {})
    assert (status, json.loads(body)["error"]["param"]) == (400, "file")


async def test_an_upload_above_25_mb_is_refused(sim: Sim) -> None:
    big = b"RIFF" + bytes(25 * 1024 * 1024)
    status, _, body = await sim.post_form(
        "/v1/audio/transcriptions", {"model": "whisper-1"}, {"file": ("big.wav", big)}
    )
    assert status == 413 and json.loads(body)["error"]["code"] == "request_too_large"


async def test_faults_apply_to_audio(sim: Sim) -> None:
    await sim.fault(status=429, retry_after=1, deployment="whisper-1")
    with pytest.raises(openai.RateLimitError) as caught:
        await sim.azure().audio.transcriptions.create(model="whisper-1", file=clip())
    assert "Transcriptions_Create" in caught.value.message
    await sim.fault(status=500, deployment="tts-1")
    with pytest.raises(openai.InternalServerError):
        await sim.client().audio.speech.create(model="tts-1", voice="alloy", input="hi")
    assert [r["status"] for r in await sim.requests()] == [429, 500]


# Speech


async def test_speech_streams_a_wav_of_the_expected_length(sim: Sim, tmp_path: Path) -> None:
    target = tmp_path / "speech.wav"
    async with sim.client().audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input=SPEECH, response_format="wav"
    ) as response:
        assert response.headers["content-type"] == "audio/wav"
        assert response.headers["transfer-encoding"] == "chunked"
        await response.stream_to_file(target)
    data = target.read_bytes()
    frames = round(len(SPEECH) * 0.06 * SPEECH_RATE)
    assert read_wav(data) == (1, 2, SPEECH_RATE, frames)
    assert wav_duration(data) == pytest.approx(len(SPEECH) * 0.06)
    (record,) = await sim.requests()
    assert (record["operation"], record["status"]) == ("speech", 200)
    assert record["chunks_sent"] >= 4


async def test_speech_formats_speed_and_azure(sim: Sim) -> None:
    client = sim.client()
    pcm = await client.audio.speech.with_raw_response.create(
        model="tts-1", voice="nova", input=SPEECH, response_format="pcm", speed=2.0
    )
    assert pcm.headers["content-type"] == "audio/pcm"
    body = pcm.content
    assert not body.startswith(b"RIFF") and len(body) == 2 * round(len(SPEECH) * 0.03 * 24_000)
    mp3 = await client.audio.speech.with_raw_response.create(
        model="tts-1", voice="echo", input="hi"
    )
    assert mp3.headers["content-type"] == "audio/mpeg"  # the default format (WAV bytes inside)
    azure = await sim.azure().audio.speech.with_raw_response.create(
        model="tts-1", voice="alloy", input="hello", response_format="wav"
    )
    assert read_wav(azure.content)[3] == round(5 * 0.06 * SPEECH_RATE)
    assert (await sim.requests())[-1]["path"] == "/openai/deployments/tts-1/audio/speech"


async def test_speech_the_api_refuses(sim: Sim) -> None:
    client = sim.client()
    with pytest.raises(openai.BadRequestError) as too_long:
        await client.audio.speech.create(model="tts-1", voice="alloy", input="x" * 4097)
    assert (too_long.value.param, too_long.value.code) == ("input", "string_above_max_length")
    with pytest.raises(openai.BadRequestError) as voice:
        await client.audio.speech.create(model="tts-1", voice="robot", input="hi")
    assert voice.value.param == "voice"
    with pytest.raises(openai.BadRequestError) as speed:
        await client.audio.speech.create(model="tts-1", voice="alloy", input="hi", speed=9)
    assert speed.value.param == "speed"
    with pytest.raises(openai.BadRequestError) as wrong_model:
        await client.audio.speech.create(model="whisper-1", voice="alloy", input="hi")
    assert wrong_model.value.code == "model_not_supported"


async def test_a_reset_fault_cuts_the_speech_stream(sim: Sim) -> None:
    await sim.fault(reset_after_chunks=2, deployment="tts-1")
    body = {"model": "tts-1", "voice": "alloy", "input": SPEECH, "response_format": "wav"}
    with pytest.raises(aiohttp.ClientPayloadError):
        async with sim.http.post(sim.url + "/v1/audio/speech", json=body, headers=AUTH) as resp:
            assert resp.status == 200
            await resp.read()
    (record,) = await sim.requests()
    assert (record["chunks_sent"], record["reset"]) == (2, True)


# Image edits


async def test_image_edit_answers_like_generations(sim: Sim) -> None:
    result = await sim.client().images.edit(
        model="gpt-image-1", image=("photo.png", PNG), prompt=PROMPT, n=2
    )
    assert result.data is not None and len(result.data) == 2
    assert all(base64.b64decode(image.b64_json or "") == PNG for image in result.data)
    assert result.usage is not None
    tokens = count_tokens(PROMPT)
    assert (result.usage.input_tokens, result.usage.output_tokens) == (tokens, 272 * 2)
    assert result.usage.total_tokens == tokens + 272 * 2
    (upload,) = await sim.uploads()
    assert (upload["field"], upload["sha256"]) == ("image", hashlib.sha256(PNG).hexdigest())
    (record,) = await sim.requests()
    assert (record["operation"], record["status"]) == ("image_edits", 200)
    assert record["body"] == {"model": "gpt-image-1", "prompt": PROMPT, "n": "2"}


async def test_image_edit_with_several_images_a_mask_and_urls(sim: Sim) -> None:
    images = [("a.png", PNG), ("b.png", PNG)]
    result = await sim.client().images.edit(
        model="dall-e-2", image=images, mask=("mask.png", PNG), prompt=PROMPT, size="256x256"
    )
    assert result.data is not None and len(result.data) == 1 and result.usage is None
    url = result.data[0].url
    assert url is not None and url.startswith(sim.url + "/_sim/images/")
    fields = [u["field"] for u in await sim.uploads()]
    assert sorted(fields) == ["image[]", "image[]", "mask"]


async def test_image_edits_on_azure_and_the_refusals(sim: Sim) -> None:
    azure = await sim.azure().images.edit(
        model="dall-e-2", image=("p.png", PNG), prompt=PROMPT, response_format="b64_json"
    )
    assert azure.data is not None and azure.data[0].b64_json == base64.b64encode(PNG).decode()
    assert (await sim.requests())[-1]["path"] == "/openai/deployments/dall-e-2/images/edits"
    status, _, body = await sim.post_form("/v1/images/edits", {"prompt": PROMPT}, {})
    assert (status, json.loads(body)["error"]["param"]) == (400, "image")
    status, _, body = await sim.post_form(
        "/v1/images/edits", {"model": "dall-e-2"}, {"image": ("p.png", PNG)}
    )
    assert (status, json.loads(body)["error"]["param"]) == (400, "prompt")
    with pytest.raises(openai.BadRequestError) as wrong_model:
        await sim.client().images.edit(model="whisper-1", image=("p.png", PNG), prompt=PROMPT)
    assert wrong_model.value.code == "model_not_supported"


# The model lists


async def test_model_lists_name_the_audio_models(sim: Sim) -> None:
    listed = {m.id for m in (await sim.client().models.list()).data}
    assert {"whisper-1", "tts-1"} <= listed
    azure = {m.id for m in (await sim.azure().models.list()).data}
    assert azure == listed
