"""Server-sent-event streaming of a chat reply, a completions answer or a Responses API answer,
with pacing, faults and disconnect detection."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

from .completions import CompletionChunkEncoder, CompletionReply
from .config import SimulatorConfig
from .responses import EventEncoder, ResponseReply
from .state import Call
from .wire import DONE_FRAME, ChatReply, ChunkEncoder

_SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}


class _Reset(Exception):
    """The injected ``reset_after_chunks`` limit was reached."""


class _Emitter:
    """Writes frames one by one (each goes straight to the transport) and counts them live."""

    def __init__(self, response: web.StreamResponse, call: Call) -> None:
        self._response = response
        self._record = call.record
        fault = call.fault
        self._reset_after = fault.reset_after_chunks if fault else None
        self._stall_after = fault.stall_after_chunks if fault else None
        self._stall_seconds = (fault.stall_ms or 0) / 1000 if fault else 0.0
        self.sent = 0
        self._record["chunks_sent"] = 0

    async def send(self, frame: bytes) -> None:
        if self._reset_after is not None and self.sent >= self._reset_after:
            raise _Reset
        if self.sent == self._stall_after:
            self._record["stalled"] = True
            await asyncio.sleep(self._stall_seconds)
        await self._response.write(frame)
        self.sent += 1
        self._record["chunks_sent"] = self.sent


class _Pacer:
    """Spaces token k at k / tokens_per_second after the first, without drift."""

    def __init__(self, tokens_per_second: float) -> None:
        self._interval = 1 / tokens_per_second if tokens_per_second > 0 else 0.0
        self._loop = asyncio.get_running_loop()
        self._start = self._loop.time()

    async def wait(self, k: int) -> None:
        if self._interval:
            delay = self._start + k * self._interval - self._loop.time()
            if delay > 0:
                await asyncio.sleep(delay)


def close_connection(call: Call) -> None:
    """Drop the TCP connection: the client sees a truncated response."""
    call.record["reset"] = True
    transport = call.request.transport
    if transport is not None:
        transport.close()


async def stream_reply(
    call: Call,
    reply: ChatReply | CompletionReply | ResponseReply,
    config: SimulatorConfig,
    *,
    starting_after: int = -1,
    settle: Callable[[], Awaitable[bool]] | None = None,
) -> web.StreamResponse:
    """Stream ``reply``. A resumed Responses API stream sends the events numbered after
    ``starting_after`` once ``settle`` says its response is done; if ``settle`` says it was
    cancelled instead, it ends after the first two (created, in_progress)."""
    response = web.StreamResponse(headers=_SSE_HEADERS)
    emitter = _Emitter(response, call)
    try:
        # The headers go at once; a background response's events only once it is done.
        await response.prepare(call.request)
        finished = await settle() if settle is not None else True
        if isinstance(reply, ResponseReply) and not finished:
            for frame in EventEncoder(reply).cancelled()[starting_after + 1 :]:
                await emitter.send(frame)
        elif isinstance(reply, ResponseReply):
            await _emit_events(emitter, reply, config, starting_after)
        elif isinstance(reply, CompletionReply):
            await _emit_completion(emitter, reply, config)
        else:
            await _emit(emitter, reply, config)
        await response.write_eof()
    except _Reset:
        close_connection(call)
    except ConnectionResetError:
        call.record["client_disconnected"] = True
    return response


async def _emit(emitter: _Emitter, reply: ChatReply, config: SimulatorConfig) -> None:
    encoder = ChunkEncoder(reply)
    if reply.azure:
        await emitter.send(encoder.azure_prompt_filter())
    for index in range(reply.n):
        await emitter.send(encoder.role(index))
    tokens = (
        [encoder.token(index, _spaced(k, piece)) for index in range(reply.n)]
        for k, piece in enumerate(reply.text_pieces)
    )
    await _paced(emitter, config, tokens)
    for index in range(reply.n):
        await emitter.send(encoder.finish(index))
    if reply.include_usage:
        await emitter.send(encoder.usage())
    await emitter.send(DONE_FRAME)


async def _emit_completion(
    emitter: _Emitter, reply: CompletionReply, config: SimulatorConfig
) -> None:
    encoder = CompletionChunkEncoder(reply)
    if reply.azure:
        await emitter.send(encoder.azure_prompt_filter())
    tokens = (
        [encoder.token(index, _spaced(k, pieces[k])) for index, pieces in enumerate(reply.choices)]
        for k in range(reply.length)
    )
    await _paced(emitter, config, tokens)
    for index in range(len(reply.choices)):
        await emitter.send(encoder.finish(index))
    if reply.include_usage:
        await emitter.send(encoder.usage())
    await emitter.send(DONE_FRAME)


def _spaced(k: int, piece: str) -> str:
    """Token ``k`` as streamed: the joined text puts a space before every token but the first."""
    return piece if k == 0 else " " + piece


async def _paced(
    emitter: _Emitter, config: SimulatorConfig, frames_by_token: Iterable[list[bytes]]
) -> None:
    """The time to first token, then token k's frames (one per choice) at k / tokens_per_second."""
    if config.ttft_ms:
        await asyncio.sleep(config.ttft_ms / 1000)
    pacer = _Pacer(config.tokens_per_second)
    for k, frames in enumerate(frames_by_token):
        await pacer.wait(k)
        for frame in frames:
            await emitter.send(frame)


async def _emit_events(
    emitter: _Emitter, reply: ResponseReply, config: SimulatorConfig, starting_after: int
) -> None:
    """The events numbered after ``starting_after``, paced as the create call paces them: the
    time to first token only if no token was sent before, then tokens_per_second."""
    encoder = EventEncoder(reply)
    opening = encoder.opening()
    deltas = [encoder.delta(_spaced(k, p)) for k, p in enumerate(reply.text_pieces)]
    closing = encoder.closing()
    skip = starting_after + 1  # events are numbered from 0, in this order
    for frame in opening[skip:]:
        await emitter.send(frame)
    skip -= len(opening)
    if skip <= 0 and config.ttft_ms:
        await asyncio.sleep(config.ttft_ms / 1000)
    pacer = _Pacer(config.tokens_per_second)
    for k, frame in enumerate(deltas[max(skip, 0) :]):
        await pacer.wait(k)
        await emitter.send(frame)
    for frame in closing[max(skip - len(deltas), 0) :]:
        await emitter.send(frame)
