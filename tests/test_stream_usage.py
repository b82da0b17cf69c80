"""The usage tap relays a stream byte for byte, less the usage event it was asked to remove."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from shared.routes import Operation
from shared.simulator.responses import EventEncoder, ResponseReply, responses_reply
from shared.usage import stream_tap as stream_usage
from shared.usage.stream_tap import UsageTap

_TOTALS = {"prompt_tokens": 13, "completion_tokens": 7, "total_tokens": 20}
USAGE = _TOTALS | {"prompt_tokens_details": {"cached_tokens": 4, "audio_tokens": 0}}
USAGE_COUNTS = _TOTALS | {"prompt_tokens_details.cached_tokens": 4}
USAGE_COUNTS["prompt_tokens_details.audio_tokens"] = 0
FILTER = {"hate": {"filtered": False, "severity": "safe"}}
# Escapes, non-ASCII, a surrogate pair, and words that look like the markers the tap looks for.
TEXTS = ["Hi", " café", ' "quoted"', " back\\slash", "\n😀", ' "usage":{', " [DONE]"]


def _event(obj: dict[str, Any], eol: bytes, ascii_only: bool) -> bytes:
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=ascii_only)
    return b"data: " + text.encode() + eol + eol


def _stream(
    texts: list[str],
    *,
    azure: bool = False,
    usage: bool = True,
    eol: bytes = b"\n",
    ascii_only: bool = False,
) -> tuple[list[bytes], int | None]:
    """A chat stream's events and the index of its usage event (if any)."""

    def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
        body: dict[str, Any] = {"id": "chatcmpl-1", "object": "chat.completion.chunk"}
        body |= {"created": 1, "model": "gpt-4o-2024-08-06", "choices": choices}
        if usage:
            body["usage"] = None
        return _event(body | extra, eol, ascii_only)

    def choice(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        c: dict[str, Any] = {"index": 0, "delta": delta, "logprobs": None}
        c["finish_reason"] = finish
        return c | ({"content_filter_results": FILTER} if azure else {})

    events = []
    if azure:  # the prompt annotations: choices is empty here too, but usage is null
        events.append(chunk([], id="", object="", model="", prompt_filter_results=[FILTER]))
    events.append(chunk([choice({"role": "assistant", "content": "", "refusal": None})]))
    events += [chunk([choice({"content": text})]) for text in texts]
    events.append(chunk([choice({}, "stop")]))
    index = None
    if usage:
        index = len(events)
        events.append(chunk([], usage=USAGE))
    events.append(b"data: [DONE]" + eol + eol)
    return events, index


def _tap(data: bytes) -> tuple[UsageTap, bytes]:
    tap = UsageTap(True)
    return tap, tap.feed(data) + tap.flush()


def _relay(tap: UsageTap, parts: list[bytes]) -> bytes:
    return b"".join(tap.feed(part) for part in parts) + tap.flush()


def _expected(events: list[bytes], index: int | None, strip: bool) -> bytes:
    return b"".join(e for i, e in enumerate(events) if not (strip and i == index))


def _check(tap: UsageTap, texts: list[str], usage: bool = True) -> None:
    assert tap.usage == (USAGE_COUNTS if usage else None)
    assert tap.saw_done
    assert tap.completion_text_chars == sum(len(t) for t in texts)
    assert tap.completion_pieces == len(texts)


@pytest.mark.parametrize("eol", [b"\n", b"\r\n"], ids=["lf", "crlf"])
@pytest.mark.parametrize("azure", [False, True], ids=["openai", "azure"])
@pytest.mark.parametrize("strip", [True, False], ids=["strip", "keep"])
def test_every_split_point(eol: bytes, azure: bool, strip: bool) -> None:
    events, index = _stream(TEXTS[:3], azure=azure, eol=eol)
    blob = b"".join(events)
    expected = _expected(events, index, strip)
    for cut in range(len(blob) + 1):
        tap = UsageTap(strip)
        assert _relay(tap, [blob[:cut], blob[cut:]]) == expected, cut
        _check(tap, TEXTS[:3])
    tap = UsageTap(strip)
    assert _relay(tap, [blob[i : i + 1] for i in range(len(blob))]) == expected
    _check(tap, TEXTS[:3])


@pytest.mark.parametrize("seed", range(6))
def test_long_stream_in_random_chunks(seed: int) -> None:
    rng = random.Random(seed)
    texts = [rng.choice(TEXTS) for _ in range(300)]
    azure, ascii_only = seed % 2 == 1, seed % 3 == 0
    eol = b"\r\n" if seed >= 4 else b"\n"
    events, index = _stream(texts, azure=azure, eol=eol, ascii_only=ascii_only)
    blob = b"".join(events)
    parts, at = [], 0
    while at < len(blob):
        size = rng.choice([1, 2, 3, rng.randint(1, 64), rng.randint(1, 2000)])
        parts.append(blob[at : at + size])
        at += size
    for strip in (True, False):
        tap = UsageTap(strip)
        assert _relay(tap, parts) == _expected(events, index, strip)
        _check(tap, texts)


def test_whole_stream_in_one_chunk_and_no_usage_chunk() -> None:
    events, index = _stream(TEXTS, azure=True)
    tap, sent = _tap(b"".join(events))
    assert sent == _expected(events, index, True)
    _check(tap, TEXTS)
    events, _ = _stream(TEXTS, usage=False)
    tap = UsageTap(True)
    assert _relay(tap, events) == b"".join(events)
    _check(tap, TEXTS, usage=False)


def test_first_event_goes_out_in_the_feed_that_completes_it() -> None:
    events, _ = _stream(["Hi", " there"])
    first, second = events[0], events[1]
    tap = UsageTap(True)
    assert tap.feed(first[:-1]) == b""
    assert tap.feed(first[-1:] + second[:10]) == first
    assert tap.completion_pieces == 0  # the role chunk's content is empty
    assert tap.feed(second[10:]) == second
    assert (tap.completion_pieces, tap.completion_text_chars) == (1, 2)
    crlf = b'data: {"choices":[{"delta":{"content":"ab"}}]}\r\n\r\n'
    assert tap.feed(crlf[:-3]) + tap.feed(crlf[-3:-1]) == b""
    assert tap.feed(crlf[-1:] + b"data: {") == crlf


_FORWARDED = {  # events forwarded unchanged that record no usage and are not the end
    "azure-first-chunk": b'data: {"id":"","object":"","created":0,"model":"","choices":[]}\n\n',
    "comment": b": ping\n\n",
    "fields": b'event: message\nid: 7\nretry: 100\ndata: {"choices":[]}\n\n',
    "done-in-content": b'data: {"choices":[{"delta":{"content":"data: [DONE]"}}]}\n\n',
    "done-in-json": b'event: x\ndata: {"note":"[DONE]"}\n\n',
    "truncated": b'data: {"choices":[],"usage":{"prompt_tokens":1,\n\n',
    "not-json": b"data: {not json\n\n",
    "open-string": b'data: {"choices":[{"delta":{"content":"no end}}\n\n',
    "bad-escape": b'data: {"choices":[{"delta":{"content":"bad \\x escape"}}]}\n\n',
    "not-an-object": b'data: ["usage", {}]\n\n',
    "too-deep": b'data: {"choices":[],"usage":{"a":' + b"[" * 5000 + b"}\n\n",
    "not-utf8": b"data: \xff\xfe\n\n",
}


@pytest.mark.parametrize("event", _FORWARDED.values(), ids=_FORWARDED.keys())
def test_other_and_malformed_events_are_forwarded(event: bytes) -> None:
    tap, sent = _tap(event)
    assert sent == event
    assert tap.usage is None and not tap.saw_done


_USAGE_EVENTS = {  # event, whether it is kept when stripping, the usage recorded
    "spaced": (b'data: {"choices": [], "usage" : {"total_tokens": 5}}\n\n', False),
    "data-lines": (b'data: {"choices":[],\ndata: "usage":{"total_tokens":5}}\n\n', False),
    "unterminated": (b'data: {"choices":[],"usage":{"total_tokens":5}}\n', False),
    "with-content": (b'data: {"choices":[{"delta":{}}],"usage":{"total_tokens":5}}\n\n', True),
    "not-sse": (b'{"choices":[{"message":{}}],\n"usage":{"total_tokens":5}}', True),
}


@pytest.mark.parametrize(("event", "kept"), _USAGE_EVENTS.values(), ids=_USAGE_EVENTS.keys())
def test_usage_is_recorded_but_only_the_usage_chunk_dropped(event: bytes, kept: bool) -> None:
    tap, sent = _tap(b'data: {"usage": null, "choices": []}\n\n' + event)
    assert sent == b'data: {"usage": null, "choices": []}\n\n' + (event if kept else b"")
    assert tap.usage == {"total_tokens": 5}


@pytest.mark.parametrize("done", [b"id: 8\ndata:[DONE]\n\n", b"data: [DONE]"])
def test_done_is_seen_in_any_form(done: bytes) -> None:
    tap, sent = _tap(done)
    assert sent == done and tap.saw_done


def test_tool_call_arguments_and_refusals_are_counted() -> None:
    def tool(function: dict[str, str]) -> bytes:
        delta = {"content": None, "tool_calls": [{"index": 0, "function": function}]}
        return _event({"choices": [{"delta": delta}]}, b"\n", ascii_only=True)

    events = [
        tool({"name": "get_weather", "arguments": ""}),
        tool({"arguments": '{"ci'}),
        tool({"arguments": 'ty": 1}'}),
        b'data: {"choices":[{"delta":{"refusal":"No."}}]}\n\n',
        b'data: {"choices":[{"logprobs":{"content":[{"token":"a"}]},"delta":{"content":"a"}}]}\n\n',
    ]
    tap, sent = _tap(b"".join(events))
    assert sent == b"".join(events)
    assert tap.completion_text_chars == len('{"ci') + len('ty": 1}') + len("No.") + 1
    assert tap.completion_pieces == 4


def test_broken_stream_counts_only_what_was_delivered() -> None:
    events, _ = _stream(TEXTS[:3])
    blob = b"".join(events)
    tap = UsageTap(True)
    sent = tap.feed(blob[: blob.index(b"quoted")])  # the upstream breaks: the relay won't flush
    assert sent == b"".join(events[:3])
    assert (tap.completion_text_chars, tap.completion_pieces) == (len("Hi café"), 2)
    assert tap.usage is None and not tap.saw_done


def test_an_overlong_event_is_passed_on_uninspected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream_usage, "_MAX_HELD", 64)
    long = b'data: {"choices":[{"delta":{"content":"' + b"x" * 200 + b'"}}]}\n\n'
    events, index = _stream(["Hi"])
    parts = [long[i : i + 50] for i in range(0, len(long), 50)] + events
    tap = UsageTap(True)
    assert _relay(tap, parts) == long + _expected(events, index, True)
    _check(tap, ["Hi"])


def _responses_stream() -> tuple[bytes, ResponseReply]:
    reply = responses_reply({"input": "count these words"}, "gpt-4o", False, 12)
    encoder = EventEncoder(reply)
    frames = [*encoder.opening(), *(encoder.delta(" " + p) for p in reply.text_pieces)]
    return b"".join([*frames, *encoder.closing()]), reply


@pytest.mark.parametrize("size", [1, 7, 64, 4096])
def test_a_responses_stream_passes_whole_and_settles_on_its_terminal_event(size: int) -> None:
    data, reply = _responses_stream()
    tap = UsageTap(False, Operation.RESPONSES)
    out = b"".join(tap.feed(data[i : i + size]) for i in range(0, len(data), size)) + tap.flush()
    assert out == data  # nothing dropped or altered: no [DONE], no usage chunk to strip
    assert tap.usage is not None and tap.usage["output_tokens"] == len(reply.text_pieces)
    assert tap.usage["input_tokens"] == reply.input_tokens
    assert tap.response_id == reply.response_id


def test_a_broken_responses_stream_counts_its_deltas() -> None:
    data, reply = _responses_stream()
    cut = data.index(b"event: response.output_text.done")
    tap = UsageTap(False, Operation.RESPONSES)
    tap.feed(data[:cut])
    assert tap.usage is None and tap.response_id == reply.response_id
    assert tap.completion_pieces == len(reply.text_pieces)
    assert tap.completion_text_chars == sum(len(" " + p) for p in reply.text_pieces)
