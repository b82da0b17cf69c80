"""Audio and image edits through the gateway (issue #17): transcriptions and translations as
streamed multipart uploads, speech relayed as a binary stream, image edits; each recorded and
priced per unit; an upload over the limit refused without the gateway holding it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import requests
from openai import AzureOpenAI, OpenAI

from shared.http.multipart import FormWriter, Part
from shared.simulator.audio import wav_bytes, wav_duration
from shared.simulator.images import PNG
from tests.conftest import Live
from tests.support.rig import gateway_rig


def client(live_url: str, key: str, style: str) -> OpenAI:
    if style == "azure":
        return AzureOpenAI(
            azure_endpoint=live_url, api_key=key, api_version="2024-10-21", max_retries=0
        )
    return OpenAI(base_url=live_url + "/v1", api_key=key, max_retries=0)


def uploads(live: Live) -> list[dict[str, Any]]:
    return list(live.sim("GET", "uploads").json()["uploads"])


@pytest.mark.parametrize("style", ["openai", "azure"])
def test_a_transcription_streams_the_audio_through_byte_for_byte(live: Live, style: str) -> None:
    audio = wav_bytes(2.5)
    live.sim("DELETE", "uploads")
    sdk = client(live.url, live.seed_key, style)
    heard = sdk.audio.transcriptions.create(model="whisper-1", file=("call.wav", audio))
    assert heard.text
    (seen,) = uploads(live)
    assert (seen["bytes"], seen["sha256"]) == (len(audio), hashlib.sha256(audio).hexdigest())
    assert seen["path"] == "/openai/deployments/whisper-1/audio/transcriptions"
    english = sdk.audio.translations.create(model="whisper-1", file=("call.wav", audio))
    assert english.text


def test_the_model_may_come_after_the_file_as_curl_sends_it(live: Live) -> None:
    audio = wav_bytes(1.0)
    writer = FormWriter()
    body = writer.file_head(Part("file", "a.wav", "audio/wav")) + audio + writer.file_end()
    body += writer.field("model", "whisper-1") + writer.field("response_format", "text")
    body += writer.end()
    live.sim("DELETE", "uploads")
    answer = requests.post(
        live.url + "/v1/audio/transcriptions",
        headers={"api-key": live.seed_key, "content-type": writer.content_type},
        data=body,
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    assert uploads(live)[0]["sha256"] == hashlib.sha256(audio).hexdigest()


@pytest.mark.parametrize("style", ["openai", "azure"])
def test_speech_is_relayed_as_a_binary_stream(live: Live, tmp_path: Path, style: str) -> None:
    sdk = client(live.url, live.seed_key, style)
    target = tmp_path / "hello.wav"
    text = "Hello from the toll gate."
    with sdk.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input=text, response_format="wav"
    ) as spoken:
        assert spoken.headers["content-type"] == "audio/wav"
        spoken.stream_to_file(target)
    seconds = wav_duration(target.read_bytes())
    assert seconds == pytest.approx(len(text) * 0.06, abs=0.05)


@pytest.mark.parametrize("style", ["openai", "azure"])
def test_an_image_is_edited(live: Live, style: str) -> None:
    sdk = client(live.url, live.seed_key, style)
    live.sim("DELETE", "uploads")
    edited = sdk.images.edit(model="gpt-image-1", image=("in.png", PNG), prompt="add a gate")
    assert edited.data and (edited.data[0].b64_json or edited.data[0].url)
    assert uploads(live)[0]["sha256"] == hashlib.sha256(PNG).hexdigest()


def test_audio_calls_name_only_audio_models(live: Live) -> None:
    sdk = client(live.url, live.seed_key, "openai")
    with pytest.raises(openai.BadRequestError) as wrong:
        sdk.audio.transcriptions.create(model="gpt-4o", file=("a.wav", wav_bytes(0.5)))
    assert isinstance(wrong.value.body, dict)
    assert wrong.value.body["code"] == "operation_not_supported"
    with pytest.raises(openai.PermissionDeniedError):
        client(live.url, live.limited_key, "openai").audio.speech.create(
            model="tts-1", voice="alloy", input="hi"
        )


PRICED = {
    "whisper": {"per_audio_minute": 0.006},
    "voice": {"per_million_characters": 15.0},
}


@pytest.fixture
def priced(live: Live, tmp_path: Path) -> Iterator[Any]:
    upstreams = {
        name: {
            "type": "azure",
            "endpoint": live.simulator.url,
            "deployment": deployment,
            "key_secret": "simulator-key",
        }
        for name, deployment in (("whisper", "whisper-1"), ("voice", "tts-1"))
    }
    models = {
        "whisper": {"upstream": "whisper", "kind": "transcriptions", "price": PRICED["whisper"]},
        "voice": {"upstream": "voice", "kind": "speech", "price": PRICED["voice"]},
    }
    settings = {
        "TOLLGATE_CONFIG_JSON": json.dumps({"upstreams": upstreams, "models": models}),
        "TOLLGATE_MAX_UPLOAD_BYTES": str(20 * 1024 * 1024),
    }
    with gateway_rig(tmp_path, settings, simulator=live.simulator) as rig:
        yield rig


def test_audio_and_speech_are_recorded_and_priced_per_unit(priced: Any) -> None:
    sdk = client(priced.gateway.url, priced.key, "openai")
    sdk.audio.transcriptions.create(model="whisper", file=("a.wav", wav_bytes(3.2)))
    heard = priced.wait_for_record(lambda r: r["operation"] == "transcriptions")
    assert heard["audio_seconds"] == 4.0  # the answer's usage: whole seconds, rounded up
    assert heard["cost"] == pytest.approx(4.0 / 60 * 0.006)
    sdk.audio.translations.create(model="whisper", file=("a.wav", wav_bytes(2.5)))
    measured = priced.wait_for_record(lambda r: r["operation"] == "translations")
    assert measured["audio_seconds"] == 2.5  # no usage in the answer: the gateway's own count
    sdk.audio.speech.create(model="voice", voice="alloy", input="x" * 1000).read()
    spoken = priced.wait_for_record(lambda r: r["operation"] == "speech")
    assert spoken["characters"] == 1000 and spoken["status"] == 200
    assert spoken["cost"] == pytest.approx(1000 * 15.0 / 1e6)


def _peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_an_upload_over_the_limit_gets_413_without_the_gateway_holding_it(priced: Any) -> None:
    url = priced.gateway.url + "/v1/audio/transcriptions"
    headers = {"api-key": priced.key}
    ok = requests.post(
        url,
        headers=headers,
        data={"model": "whisper"},
        files={"file": ("a.wav", wav_bytes(1))},
        timeout=30,
    )
    assert ok.status_code == 200, ok.text
    before = _peak_rss_kb(priced.gateway.process.pid)
    writer = FormWriter()
    chunk = bytes(1024 * 1024)

    def chunked() -> Iterator[bytes]:  # no content-length: the gateway counts as it reads
        yield writer.field("model", "whisper")
        yield writer.file_head(Part("file", "big.wav", "audio/wav"))
        for _ in range(30):
            yield chunk
        yield writer.file_end() + writer.end()

    refused = requests.post(
        url,
        headers={**headers, "content-type": writer.content_type},
        data=chunked(),
        timeout=60,
    )
    assert refused.status_code == 413, refused.text
    assert refused.json()["error"]["code"] == "request_too_large"
    declared = requests.post(
        url,
        headers={**headers, "content-type": writer.content_type},
        data=b"".join(chunked()),
        timeout=60,
    )
    assert declared.status_code == 413
    grown_mb = (_peak_rss_kb(priced.gateway.process.pid) - before) / 1024
    assert grown_mb < 10, f"the gateway's peak memory grew by {grown_mb:.1f} MB"
