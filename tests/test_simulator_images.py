"""The simulator's image generation (`/v1/images/generations`, Azure's deployments and v1 path)
over real HTTP on 127.0.0.1, driven by the official openai SDK and, for raw answers, by aiohttp."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import zlib
from typing import Any

import openai
import pytest

from shared.simulator.content import count_tokens
from tests.support.sim_control import KEY, SimControl, simulator_fixtures

API_VERSION = "2024-10-21"
AUTH = {"Authorization": f"Bearer {KEY}"}
PROMPT = "a lighthouse on a cliff at dawn"
SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHUNK_LIMIT = 16  # a PNG here has three chunks
IMAGE_MODELS = {"dall-e-2", "dall-e-3", "gpt-image-1"}
RESOURCE_NOT_FOUND = {"error": {"code": "404", "message": "Resource not found"}}


class Sim(SimControl):
    async def post(
        self, path: str, body: Any, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        sent = AUTH if headers is None else headers
        async with self.http.post(self.url + path, json=body, headers=sent) as resp:
            return resp.status, await resp.json()

    async def fetch(self, url: str) -> tuple[int, str, bytes]:
        async with self.http.get(url) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), await resp.read()


sim_server, sim = simulator_fixtures(Sim)


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """The (type, data) of each chunk of a PNG, each CRC checked."""
    assert data[:8] == SIGNATURE
    chunks: list[tuple[bytes, bytes]] = []
    at = 8
    while at < len(data):
        assert len(chunks) < CHUNK_LIMIT
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF
        chunks.append((kind, body))
        at += 12 + length
    return chunks


def decode_png(data: bytes) -> tuple[int, int]:
    """(width, height) of a valid 8-bit RGB PNG, after checking its pixel data's size."""
    chunks = png_chunks(data)
    assert [kind for kind, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    width, height, depth, colour, _, _, _ = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, colour) == (8, 2)
    assert len(zlib.decompress(chunks[1][1])) == height * (1 + 3 * width)
    return width, height


# Answers


async def test_b64_json_answers_one_decodable_png_per_image(sim: Sim) -> None:
    result = await sim.client().images.generate(
        model="dall-e-2", prompt=PROMPT, n=3, size="256x256", response_format="b64_json"
    )
    assert result.data is not None and len(result.data) == 3
    for image in result.data:
        assert image.b64_json is not None and image.url is None
        assert image.revised_prompt == PROMPT
        assert decode_png(base64.b64decode(image.b64_json)) == (8, 8)
    assert result.usage is None and result.created > 0


async def test_the_wire_shape_of_a_dall_e_3_answer(sim: Sim) -> None:
    status, wire = await sim.post(
        "/v1/images/generations",
        {"model": "dall-e-3", "prompt": PROMPT, "quality": "hd", "response_format": "b64_json"},
    )
    assert status == 200
    assert set(wire) == {"created", "data"} and isinstance(wire["created"], int)
    assert [set(item) for item in wire["data"]] == [{"b64_json", "revised_prompt"}]


async def test_dall_e_answers_urls_by_default_that_serve_the_png(sim: Sim) -> None:
    result = await sim.client().images.generate(model="dall-e-3", prompt=PROMPT)
    assert result.data is not None and len(result.data) == 1
    (image,) = result.data
    assert image.b64_json is None and image.url is not None
    assert image.url.startswith(sim.url + "/_sim/images/") and image.url.endswith(".png")
    status, content_type, body = await sim.fetch(image.url)
    assert (status, content_type) == (200, "image/png")
    assert decode_png(body) == (8, 8)


async def test_url_mode_gives_each_image_its_own_url(sim: Sim) -> None:
    result = await sim.client().images.generate(
        model="dall-e-2", prompt=PROMPT, n=2, response_format="url"
    )
    assert result.data is not None
    urls = [image.url for image in result.data]
    assert len(urls) == 2 and len(set(urls)) == 2
    for url in urls:
        assert url is not None
        assert (await sim.fetch(url))[0] == 200
    assert (await sim.fetch(sim.url + "/_sim/images/nope.png"))[0] == 404


async def test_gpt_image_1_answers_base64_with_usage(sim: Sim) -> None:
    tokens = count_tokens(PROMPT)
    assert tokens == 7
    result = await sim.client().images.generate(
        model="gpt-image-1", prompt=PROMPT, n=2, size="1024x1536", quality="low", user="u-1"
    )
    assert result.data is not None and len(result.data) == 2
    assert all(image.b64_json and image.url is None for image in result.data)
    assert result.usage is not None
    assert result.usage.input_tokens == 7
    assert result.usage.input_tokens_details.text_tokens == 7
    assert result.usage.input_tokens_details.image_tokens == 0
    assert result.usage.output_tokens == 272 * 2
    assert result.usage.total_tokens == 7 + 272 * 2
    raw = await sim.client().images.with_raw_response.generate(model="gpt-image-1", prompt="one")
    assert json.loads(raw.text)["usage"] == {
        "input_tokens": 1,
        "input_tokens_details": {"text_tokens": 1, "image_tokens": 0},
        "output_tokens": 272,
        "total_tokens": 273,
    }


async def test_a_request_naming_no_model_is_dall_e_2s(sim: Sim) -> None:
    status, wire = await sim.post("/v1/images/generations", {"prompt": PROMPT})
    assert status == 200 and len(wire["data"]) == 1 and "url" in wire["data"][0]
    assert "usage" not in wire


# Azure


async def test_azure_deployment_path(sim: Sim) -> None:
    result = await sim.azure().images.generate(
        model="dall-e-3", prompt=PROMPT, response_format="b64_json"
    )
    assert result.data is not None and len(result.data) == 1
    assert decode_png(base64.b64decode(result.data[0].b64_json or "")) == (8, 8)
    record = (await sim.requests())[-1]
    assert record["path"] == "/openai/deployments/dall-e-3/images/generations"
    assert record["query"] == {"api-version": API_VERSION}
    assert (record["operation"], record["status"]) == ("images", 200)


async def test_azure_needs_an_api_version(sim: Sim) -> None:
    path = "/openai/deployments/dall-e-3/images/generations"
    assert await sim.post(path, {"prompt": PROMPT}, {"api-key": KEY}) == (404, RESOURCE_NOT_FOUND)
    status, answer = await sim.post(path + "?api-version=bogus", {"prompt": PROMPT})
    assert (status, answer["error"]["code"]) == (400, "BadRequest")


async def test_azure_v1_path_names_the_model_in_the_body(sim: Sim) -> None:
    result = await sim.client("/openai/v1").images.generate(model="gpt-image-1", prompt=PROMPT)
    assert result.data is not None and result.usage is not None
    assert (await sim.requests())[-1]["path"] == "/openai/v1/images/generations"


# Errors


async def test_dall_e_3_refuses_more_than_one_image(sim: Sim) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await sim.client().images.generate(model="dall-e-3", prompt=PROMPT, n=2)
    assert caught.value.status_code == 400
    assert caught.value.message.endswith("You must provide n=1 for this model.")
    with pytest.raises(openai.BadRequestError):
        await sim.azure().images.generate(model="dall-e-3", prompt=PROMPT, n=2)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "dall-e-2"}, "prompt"),
        ({"model": "dall-e-2", "prompt": 5}, "prompt"),
        ({"model": "dall-e-2", "prompt": "x" * 1001}, "prompt"),
        ({"model": "dall-e-2", "prompt": PROMPT, "n": 11}, "n"),
        ({"model": "dall-e-2", "prompt": PROMPT, "n": 0}, "n"),
        ({"model": "dall-e-2", "prompt": PROMPT, "quality": "hd"}, "quality"),
        ({"model": "dall-e-2", "prompt": PROMPT, "response_format": "png"}, "response_format"),
        ({"model": "gpt-image-1", "prompt": PROMPT, "response_format": "url"}, "response_format"),
        ({"model": "dall-e-2", "prompt": PROMPT, "user": 7}, "user"),
    ],
)
async def test_bad_requests(sim: Sim, body: dict[str, Any], param: str) -> None:
    status, answer = await sim.post("/v1/images/generations", body)
    assert status == 400
    assert answer["error"]["type"] == "invalid_request_error"
    assert answer["error"]["param"] == param


async def test_a_size_the_model_lacks(sim: Sim) -> None:
    body = {"model": "dall-e-3", "prompt": PROMPT, "size": "256x256"}
    status, answer = await sim.post("/v1/images/generations", body)
    assert status == 400 and answer["error"]["code"] == "invalid_size"


async def test_wrong_operation_both_ways(sim: Sim) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await sim.client().images.generate(model="gpt-4o", prompt=PROMPT)
    assert caught.value.code == "model_not_supported"
    with pytest.raises(openai.BadRequestError) as azure_caught:
        await sim.azure().images.generate(model="gpt-4o", prompt=PROMPT)
    assert azure_caught.value.code == "OperationNotSupported"
    for model in IMAGE_MODELS:
        with pytest.raises(openai.BadRequestError) as chat_caught:
            await sim.client().chat.completions.create(
                model=model, messages=[{"role": "user", "content": "hi"}]
            )
        assert chat_caught.value.code == "model_not_supported"
    with pytest.raises(openai.BadRequestError) as azure_chat:
        await sim.azure().chat.completions.create(
            model="dall-e-3", messages=[{"role": "user", "content": "hi"}]
        )
    assert azure_chat.value.code == "OperationNotSupported"


async def test_auth_is_required(sim: Sim) -> None:
    status, answer = await sim.post("/v1/images/generations", {"prompt": PROMPT}, {})
    assert status == 401 and "API key" in answer["error"]["message"]
    status, answer = await sim.post(
        f"/openai/deployments/dall-e-3/images/generations?api-version={API_VERSION}",
        {"prompt": PROMPT},
        {"api-key": "wrong"},
    )
    assert (status, answer["error"]["code"]) == (401, "401")


# Faults, latency and the request log


async def test_a_fault_matching_the_model_answers_its_status(sim: Sim) -> None:
    await sim.fault(status=429, retry_after=2, deployment="gpt-image-1")
    # Another model's request passes the fault by.
    assert (await sim.client().images.generate(model="dall-e-2", prompt=PROMPT)).data
    with pytest.raises(openai.RateLimitError) as caught:
        await sim.client().images.generate(model="gpt-image-1", prompt=PROMPT)
    assert caught.value.response.headers["retry-after"] == "2"
    assert "gpt-image-1" in caught.value.message
    await sim.fault(status=429, deployment="dall-e-3")
    with pytest.raises(openai.RateLimitError) as azure_caught:
        await sim.azure().images.generate(model="dall-e-3", prompt=PROMPT)
    assert "ImageGenerations_Create" in azure_caught.value.message
    records = await sim.requests()
    assert [r["status"] for r in records] == [200, 429, 429]
    assert all(r["operation"] == "images" for r in records)
    assert records[1]["fault"]["status"] == 429


async def test_a_reset_fault_drops_the_connection(sim: Sim) -> None:
    await sim.fault(reset_after_chunks=0, deployment="dall-e-2")
    with pytest.raises(openai.APIConnectionError):
        await sim.client().images.generate(model="dall-e-2", prompt=PROMPT)


async def test_latency_applies(sim: Sim) -> None:
    await sim.set_config(latency_ms=150)
    loop_time = asyncio.get_running_loop().time
    started = loop_time()
    await sim.client().images.generate(model="dall-e-2", prompt=PROMPT)
    assert loop_time() - started >= 0.15


async def test_the_request_log_names_the_operation(sim: Sim) -> None:
    body = {"model": "gpt-image-1", "prompt": PROMPT, "n": 2}
    assert (await sim.post("/v1/images/generations", body))[0] == 200
    (record,) = await sim.requests()
    assert (record["operation"], record["status"], record["body"]) == ("images", 200, body)


# The model lists


async def test_model_lists_name_the_image_models(sim: Sim) -> None:
    listed = {m.id for m in (await sim.client().models.list()).data}
    assert listed >= IMAGE_MODELS and len(listed) == 20
    azure = {m.id: m.model_extra or {} for m in (await sim.azure().models.list()).data}
    assert set(azure) == listed
    for model in IMAGE_MODELS:
        capabilities = azure[model]["capabilities"]
        assert capabilities["inference"] and not capabilities["chat_completion"]


async def test_an_unknown_image_path_is_not_found(sim: Sim) -> None:
    status, _ = await sim.post("/v1/images/variations", {"prompt": PROMPT})
    assert status == 404
