"""The cache's two converters: a delivered stream assembled into the whole answer, and a whole
answer replayed as a stream; the replay is read back with the openai SDK's own decoder."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import openai
import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types import Completion
from openai.types.chat import ChatCompletionChunk

from shared.cache.assemble import assembled, storable
from shared.cache.replay import replayed
from shared.routes import Operation

Json = dict[str, Any]
CHAT, COMPLETIONS = Operation.CHAT, Operation.COMPLETIONS

USAGE: Json = {
    "prompt_tokens": 9,
    "completion_tokens": 12,
    "total_tokens": 21,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
}
FLAT_USAGE = {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21}
HEAD: Json = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000}
HEAD |= {"model": "gpt-4o-2024-08-06"}


def chat_answer(*choices: Json, **extra: Any) -> Json:
    return {**HEAD, **extra, "choices": list(choices), "usage": USAGE}


def message(content: str | None = None, **extra: Any) -> Json:
    return {"role": "assistant", "content": content, "refusal": None, **extra}


def chat_choice(msg: Json, finish: str = "stop", index: int = 0, logprobs: Any = None) -> Json:
    return {"index": index, "message": msg, "logprobs": logprobs, "finish_reason": finish}


def tool_call(call_id: str, name: str, arguments: str) -> Json:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def token(text: str) -> Json:
    return {"token": text, "logprob": -0.5, "bytes": list(text.encode()), "top_logprobs": []}


CHAT_TEXT = chat_answer(
    chat_choice(message("Hello, wörld — ✓")), system_fingerprint="fp_1", service_tier="default"
)
TOOL_CALLS = [
    tool_call("call_a", "get_weather", '{"city": "Oslo"}'),
    tool_call("call_b", "get_time", '{"zone": "CET"}'),
]
COMPLETION: Json = {
    "id": "cmpl-1",
    "object": "text_completion",
    "created": 1700000000,
    "model": "gpt-35-turbo-instruct",
    "choices": [
        {
            "text": " a tale",
            "index": 0,
            "logprobs": {
                "tokens": [" a", " tale"],
                "token_logprobs": [-0.1, -0.2],
                "top_logprobs": [{" a": -0.1}, {" tale": -0.2}],
                "text_offset": [5, 7],
            },
            "finish_reason": "length",
        }
    ],
    "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
}


def flat_usage_of(answer: Json) -> dict[str, int]:
    def flat(block: Json, prefix: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for name, value in block.items():
            if isinstance(value, dict):
                counts |= flat(value, f"{prefix}{name}.")
            else:
                counts[prefix + name] = value
        return counts

    return flat(answer["usage"], "")


def round_trip(operation: Operation, answer: Json) -> Json:
    stream = replayed(operation, json.dumps(answer).encode(), True)
    whole = assembled(operation, stream, flat_usage_of(answer))
    assert whole is not None
    return dict(json.loads(whole))


def sse(*chunks: Json | str, end: str = "\n") -> bytes:
    """An SSE body: a str is a line as is (a comment), a dict a data event; then [DONE]."""
    lines = [c if isinstance(c, str) else f"data: {json.dumps(c)}{end}" for c in chunks]
    return (end.join(lines) + f"{end}data: [DONE]{end}{end}").encode()


def chunk(*choices: Json, **extra: Any) -> Json:
    head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000}
    return {**head, "model": "gpt-4o-2024-08-06", **extra, "choices": list(choices)}


def delta(index: int = 0, finish: str | None = None, **fields: Any) -> Json:
    return {"index": index, "delta": fields, "logprobs": None, "finish_reason": finish}


def tool_arguments(index: int, text: str) -> Json:
    return {"index": index, "function": {"arguments": text}}


def content_logprobs(text: str) -> Json:
    return {"content": [token(text)], "refusal": None}


def sdk_chunks(body: bytes) -> list[ChatCompletionChunk]:
    return list(openai.Stream(cast_to=ChatCompletionChunk, response=response(body), client=CLIENT))


def response(body: bytes) -> httpx2.Response:
    # httpx2 is the openai SDK's own HTTP client: openai.Stream reads an httpx2.Response.
    request = httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions")
    headers = {"content-type": "text/event-stream"}
    return httpx2.Response(200, content=body, headers=headers, request=request)


CLIENT = openai.OpenAI(api_key="x", base_url="http://127.0.0.1/v1")


# --- round trips: replayed, then assembled again ---


def test_chat_text_round_trip() -> None:
    assert round_trip(CHAT, CHAT_TEXT) == CHAT_TEXT
    stream = replayed(CHAT, json.dumps(CHAT_TEXT).encode(), False)
    whole = assembled(CHAT, stream, flat_usage_of(CHAT_TEXT))
    assert whole is not None and "wörld — ✓".encode() in whole  # ensure_ascii=False


def test_chat_tool_calls_round_trip() -> None:
    answer = chat_answer(chat_choice(message(None, tool_calls=TOOL_CALLS), "tool_calls"))
    assert round_trip(CHAT, answer) == answer


def test_two_choices_round_trip() -> None:
    answer = chat_answer(
        chat_choice(message("first"), index=0), chat_choice(message("second"), "length", 1)
    )
    assert round_trip(CHAT, answer) == answer


def test_logprobs_refusal_and_annotations_round_trip() -> None:
    logprobs = {"content": [token("It"), token(" is")], "refusal": None}
    citation = {"type": "url_citation", "url_citation": {"url": "https://example.com"}}
    text = chat_choice(message("It is", annotations=[citation]), logprobs=logprobs)
    refused = chat_choice(message(None, refusal="I can't help with that."), index=1)
    answer = chat_answer(text, refused)
    assert round_trip(CHAT, answer) == answer


def test_legacy_function_call_round_trip() -> None:
    call = {"name": "lookup", "arguments": '{"q": "x"}'}
    answer = chat_answer(chat_choice(message(None, function_call=call), "function_call"))
    assert round_trip(CHAT, answer) == answer


def test_completions_round_trip() -> None:
    assert round_trip(COMPLETIONS, COMPLETION) == COMPLETION


# --- streams built by hand, as upstreams send them ---


def test_tool_calls_assembled_from_split_arguments() -> None:
    call_a = {"index": 0, "id": "call_a", "type": "function"}
    call_b = {"index": 1, "id": "call_b", "type": "function"}
    args = tool_arguments
    stream = sse(
        chunk(delta(role="assistant", content=None, refusal=None)),
        chunk(delta(tool_calls=[{**call_a, "function": {"name": "get_weather", "arguments": ""}}])),
        chunk(delta(tool_calls=[args(0, '{"city"')])),
        chunk(delta(tool_calls=[args(0, ': "Os')])),
        chunk(delta(tool_calls=[args(0, 'lo"}')])),
        chunk(delta(tool_calls=[{**call_b, "function": {"name": "get_time", "arguments": ""}}])),
        chunk(delta(tool_calls=[args(1, '{"zone": ')])),
        chunk(delta(tool_calls=[args(1, '"CET"}')])),
        chunk(delta(finish="tool_calls")),
        chunk(usage={"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21}),
    )
    whole = assembled(CHAT, stream, flat_usage_of(chat_answer()))
    expected = chat_answer(chat_choice(message(None, tool_calls=TOOL_CALLS), "tool_calls"))
    assert whole is not None and json.loads(whole) == expected


def test_interleaved_choices_and_logprobs_are_merged_per_choice() -> None:
    lp = content_logprobs
    stream = sse(
        chunk(delta(0, role="assistant", content=""), delta(1, role="assistant", content="")),
        chunk({**delta(1, content="Bon"), "logprobs": lp("Bon")}),
        chunk({**delta(0, content="Hel"), "logprobs": lp("Hel")}),
        chunk({**delta(0, content="lo"), "logprobs": lp("lo")}),
        chunk({**delta(1, content="jour"), "logprobs": lp("jour")}),
        chunk(delta(1, finish="stop"), delta(0, finish="length")),
    )
    whole = assembled(CHAT, stream, FLAT_USAGE)
    assert whole is not None
    first, second = json.loads(whole)["choices"]
    assert (first["message"]["content"], first["finish_reason"]) == ("Hello", "length")
    assert (second["message"]["content"], second["finish_reason"]) == ("Bonjour", "stop")
    assert first["logprobs"] == {"content": [token("Hel"), token("lo")], "refusal": None}
    assert [t["token"] for t in second["logprobs"]["content"]] == ["Bon", "jour"]


def test_completions_logprobs_are_concatenated() -> None:
    def part(text: str, logprob: float, offset: int) -> Json:
        logprobs = {"tokens": [text], "token_logprobs": [logprob]}
        logprobs |= {"top_logprobs": [{text: logprob}], "text_offset": [offset]}
        return {"text": text, "index": 0, "logprobs": logprobs, "finish_reason": None}

    end = {"text": "", "index": 0, "logprobs": None, "finish_reason": "length"}
    head = {key: COMPLETION[key] for key in ("id", "object", "created", "model")}
    choices = [part(" a", -0.1, 5), part(" tale", -0.2, 7), end]
    stream = sse(*({**head, "choices": [choice]} for choice in choices))
    whole = assembled(COMPLETIONS, stream, flat_usage_of(COMPLETION))
    assert whole is not None and json.loads(whole) == COMPLETION


def test_azure_stream_with_filters_comments_and_crlf() -> None:
    prompt_filter = {"prompt_index": 0, "content_filter_results": {"hate": {"filtered": False}}}
    azure_head = {"id": "", "object": "", "created": 0, "model": ""}
    filtered = {"content_filter_results": {"hate": {"filtered": False, "severity": "safe"}}}
    late = {"content_filter_offsets": {"check_offset": 0}, **filtered}
    stream = sse(
        ": keep-alive\r\n",
        {**azure_head, "choices": [], "prompt_filter_results": [prompt_filter]},
        chunk(delta(role="assistant", content="", refusal=None), system_fingerprint="fp_az"),
        chunk({**delta(content="Hi"), **filtered}, system_fingerprint="fp_az", usage=None),
        ": x-tollgate-cost 0.0001 USD\r\n",
        chunk({**delta(content=" there"), **filtered}, system_fingerprint="fp_az", usage=None),
        chunk(delta(finish="stop"), system_fingerprint="fp_az"),
        chunk({**delta(), **late}, system_fingerprint="fp_az"),
        end="\r\n",
    )
    assert b"\r\n\r\n" in stream and b"\n\n" not in stream
    whole = assembled(CHAT, stream, FLAT_USAGE)
    expected = chat_answer(chat_choice(message("Hi there")), system_fingerprint="fp_az")
    expected["usage"] = FLAT_USAGE
    assert whole is not None and json.loads(whole) == expected


def test_flat_usage_is_nested_again() -> None:
    usage = {"total_tokens": 3, "prompt_tokens_details.cached_tokens": 1, "a.b.c": 2}
    whole = assembled(CHAT, sse(chunk(delta(finish="stop", content="x"))), usage)
    assert whole is not None
    assert json.loads(whole)["usage"] == {
        "total_tokens": 3,
        "prompt_tokens_details": {"cached_tokens": 1},
        "a": {"b": {"c": 2}},
    }


# --- what the SDK makes of a replay ---


def test_replayed_chat_reads_with_the_sdk() -> None:
    msg = message("Checking both.", tool_calls=TOOL_CALLS)
    answer = chat_answer(chat_choice(msg, "tool_calls"), system_fingerprint="fp_1")
    chunks = sdk_chunks(replayed(CHAT, json.dumps(answer).encode(), True))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert "".join(d.content or "" for d in deltas) == "Checking both."
    calls = [call for d in deltas for call in d.tool_calls or []]
    assert [(c.index, c.id, c.function and c.function.name) for c in calls] == [
        (0, "call_a", "get_weather"),
        (1, "call_b", "get_time"),
    ]
    assert all(c.usage is None and c.system_fingerprint == "fp_1" for c in chunks[:-1])
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.model_dump(exclude_none=True) == USAGE


def test_sdk_accumulates_a_replay_to_the_same_message() -> None:
    msg = message("Checking both.", tool_calls=TOOL_CALLS)
    answer = chat_answer(chat_choice(msg, "tool_calls"))
    state: ChatCompletionStreamState[None] = ChatCompletionStreamState()
    for sdk_chunk in sdk_chunks(replayed(CHAT, json.dumps(answer).encode(), True)):
        state.handle_chunk(sdk_chunk)
    final = state.get_final_completion()
    assert final.id == answer["id"] and final.choices[0].finish_reason == "tool_calls"
    got = final.choices[0].message.model_dump(include={"role", "content", "refusal"})
    assert got == {"role": "assistant", "content": "Checking both.", "refusal": None}
    calls = final.choices[0].message.tool_calls or []
    assert [c.model_dump(include={"id", "type", "function"}) for c in calls] == [
        {**call, "function": {**call["function"], "parsed_arguments": None}} for call in TOOL_CALLS
    ]
    assert final.usage is not None and final.usage.total_tokens == 21


def test_replayed_without_usage_has_no_usage_chunk() -> None:
    body = replayed(CHAT, json.dumps(CHAT_TEXT).encode(), False)
    assert body.endswith(b"data: [DONE]\n\n") and b'"usage"' not in body
    chunks = sdk_chunks(body)
    assert all(c.choices for c in chunks)
    assert [c.choices[0].finish_reason for c in chunks] == [None, None, "stop"]
    assert chunks[0].choices[0].delta.role == "assistant"


def test_replayed_completions_read_with_the_sdk() -> None:
    body = replayed(COMPLETIONS, json.dumps(COMPLETION).encode(), True)
    stream = openai.Stream(cast_to=Completion, response=response(body), client=CLIENT)
    chunks = list(stream)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == " a tale"
    assert [c.choices[0].finish_reason for c in chunks if c.choices] == [None, "length"]
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 7


def test_embeddings_are_never_replayed() -> None:
    answer = {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.1]}]}
    with pytest.raises(ValueError, match="never streamed"):
        replayed(Operation.EMBEDDINGS, json.dumps(answer).encode(), False)


# --- what is not kept ---

GOOD = [chunk(delta(role="assistant", content="")), chunk(delta(content="ok"))]
FINISH = chunk(delta(finish="stop"))


def test_the_good_stream_is_kept() -> None:
    # The cases below each spoil this one stream in one way.
    assert assembled(CHAT, sse(*GOOD, FINISH), FLAT_USAGE) is not None


@pytest.mark.parametrize(
    "stream",
    [
        pytest.param(sse(*GOOD, FINISH).removesuffix(b"data: [DONE]\n\n"), id="no-done"),
        pytest.param(sse(*GOOD, {"error": {"message": "overloaded"}}, FINISH), id="error-event"),
        pytest.param(sse(*GOOD, chunk(delta(audio={"id": "a1"})), FINISH), id="audio-delta"),
        pytest.param(sse(*GOOD, chunk(delta(reasoning_content="hm")), FINISH), id="reasoning"),
        pytest.param(sse(*GOOD, chunk(delta(finish="content_filter"))), id="content-filter"),
        pytest.param(sse(*GOOD), id="no-finish-reason"),
        pytest.param(sse(*GOOD, "data: {not json\n", FINISH), id="bad-json"),
        pytest.param(sse(chunk(), chunk(usage=FLAT_USAGE)), id="no-choices"),
        pytest.param(sse(*GOOD, chunk(delta(content=7)), FINISH), id="content-not-text"),
        pytest.param(b"", id="empty"),
    ],
)
def test_spoilt_streams_are_not_kept(stream: bytes) -> None:
    assert assembled(CHAT, stream, FLAT_USAGE) is None


def test_streams_of_other_operations_or_without_total_tokens_are_not_kept() -> None:
    stream = sse(*GOOD, FINISH)
    assert assembled(Operation.EMBEDDINGS, stream, FLAT_USAGE) is None
    assert assembled(Operation.RESPONSES, stream, FLAT_USAGE) is None
    assert assembled(CHAT, stream, {"prompt_tokens": 1, "completion_tokens": 1}) is None


def test_whole_answers_that_are_kept() -> None:
    embeddings = {"object": "list", "data": [{"embedding": [0.1]}], "usage": {}}
    assert storable(CHAT, json.dumps(CHAT_TEXT).encode())
    assert storable(COMPLETIONS, json.dumps(COMPLETION).encode())
    assert storable(Operation.EMBEDDINGS, json.dumps(embeddings).encode())


@pytest.mark.parametrize(
    ("operation", "answer"),
    [
        pytest.param(CHAT, b"{not json", id="not-json"),
        pytest.param(CHAT, b"\xff\xfe", id="not-utf8"),
        pytest.param(CHAT, b"[1, 2]", id="not-an-object"),
        pytest.param(CHAT, {**CHAT_TEXT, "choices": []}, id="no-choices"),
        pytest.param(CHAT, {k: v for k, v in CHAT_TEXT.items() if k != "usage"}, id="no-usage"),
        pytest.param(
            CHAT, chat_answer(chat_choice(message(None), "content_filter")), id="content-filter"
        ),
        pytest.param(
            CHAT,
            chat_answer(chat_choice(message("a")), {"index": 1, "message": message("b")}),
            id="a-choice-without-finish-reason",
        ),
        pytest.param(
            CHAT,
            chat_answer(chat_choice({**message(None), "audio": {"id": "audio_1"}}, "stop")),
            id="spoken-answer",
        ),
        pytest.param(Operation.EMBEDDINGS, {"object": "list", "data": []}, id="no-embeddings"),
        pytest.param(Operation.RESPONSES, CHAT_TEXT, id="other-operation"),
        pytest.param(Operation.IMAGES, {"data": [{"url": "u"}]}, id="images"),
    ],
)
def test_whole_answers_that_are_not_kept(operation: Operation, answer: bytes | Json) -> None:
    body = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
    assert not storable(operation, body)
