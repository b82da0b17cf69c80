"""Relaying a streamed answer chunk by chunk, and settling its tokens however it ends."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from starlette.responses import Response, StreamingResponse

from shared.errors import GatewayError, error_body
from shared.guardrails.answers import stream_ending
from shared.guardrails.stream_guard import Blocked, StreamGuard
from shared.usage.account import Account
from shared.usage.stream_tap import UsageTap

log = logging.getLogger("tollgate.relay")


class RelayedStream(StreamingResponse):
    """Relays upstream chunks as they arrive. Its own end, however it comes (finished, broken,
    client gone, never started), drops the upstream connection if still open and closes the
    request's account."""

    def __init__(
        self,
        resp: aiohttp.ClientResponse,
        upstream_name: str,
        tap: UsageTap,
        account: Account,
        headers: dict[str, str],
    ):
        self._upstream = resp
        self._name = upstream_name
        self._tap = tap
        self._account = account
        self._completed = False
        self._error_code = ""
        # The delivered text, kept only for content logging or the response cache.
        self._capture = account.delivered()
        # The content policy's check of the answer, as it streams.
        self._guard = StreamGuard(account.guard) if account.guard is not None else None
        super().__init__(self._relay(), status_code=200, headers=headers)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await relay_until_disconnect(self, receive, send)
        finally:
            self.finish()

    def finish(self) -> None:
        """Drop the upstream connection if still open and close the account (idempotent)."""
        self._upstream.close()
        gone = not self._completed and not self._error_code
        self._account.close_stream(self._tap, self._error_code, disconnected=gone)

    async def _relay(self) -> AsyncIterator[bytes]:
        """On the client's disconnect this is cancelled, and finish() drops the upstream
        connection, which cancels the request upstream too."""
        last = b""  # the last events sent: a Responses error event numbers itself after them
        try:
            async for chunk in self._upstream.content.iter_any():
                out = self._tap.feed(chunk)
                if self._tap.response_id and not self._account.response_id:
                    self._account.response_seen(self._tap.response_id)
                if self._guard is not None:
                    out = await self._guard.admit(out)
                if out:
                    self._account.first_byte()
                    if self._capture is not None:
                        self._capture.append(out)
                    last = out
                    yield out
            rest = self._tap.flush()
            if self._guard is not None:
                rest = await self._guard.admit(rest, final=True)
                self._account.checked("answer", self._guard.verdict())
            if rest:
                if self._capture is not None:
                    self._capture.append(rest)
                yield rest
            cost = self._account.stream_cost(self._tap)
            if cost:
                if self._capture is not None:
                    self._capture.append(cost)
                yield cost
            self._completed = True
            self._upstream.release()
        except Blocked as exc:
            assert self._guard is not None
            self._account.checked("answer", exc.verdict)
            self._error_code = "content_filter"
            if exc.released:
                self._account.first_byte()
                last = exc.released
                yield exc.released
            guard = self._guard
            yield stream_ending(
                guard.guard.operation, exc.verdict, guard.first, self._numbered(last)
            )
        except GatewayError as exc:  # the answer's check could not be made, and fails closed
            self._error_code = exc.code or "content_check_unavailable"
            yield _error_event(exc.message, exc.type, exc.code, self._numbered(last))
        except TimeoutError:
            log.warning(
                "request_id=%s stream from %s stalled: phase=idle",
                self._account.request_id,
                self._name,
            )
            self._error_code = "upstream_timeout"
            message = "The upstream stream stalled (no data within the read timeout)."
            yield _error_event(message, "upstream_error", self._error_code, self._numbered(last))
        except aiohttp.ClientError as exc:
            log.warning(
                "request_id=%s stream from %s broke: %s",
                self._account.request_id,
                self._name,
                type(exc).__name__,
            )
            self._error_code = "stream_interrupted"
            message = "The upstream stream was interrupted."
            yield _error_event(message, "upstream_error", self._error_code, self._numbered(last))

    def _numbered(self, last: bytes) -> int | None:
        """A Responses stream's next sequence number (its events are numbered); None for chat."""
        return _next_sequence(last) if self._tap.responses else None


class ByteStream(StreamingResponse):
    """A binary answer (speech audio, a file's content) relayed as it arrives, never held
    whole; its end closes the account: the upstream's status, or why it broke off."""

    def __init__(
        self,
        resp: aiohttp.ClientResponse,
        upstream_name: str,
        account: Account,
        headers: dict[str, str],
    ):
        self._upstream = resp
        self._name = upstream_name
        self._account = account
        # The client leaving mid-answer: what the upstream made is still charged.
        self._end: tuple[int, str] = (resp.status, "client_disconnected")
        super().__init__(self._relay(), status_code=resp.status, headers=headers)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await relay_until_disconnect(self, receive, send)
        finally:
            self._upstream.close()
            self._account.close_error(*self._end)

    async def _relay(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._upstream.content.iter_any():
                self._account.first_byte()
                yield chunk
            self._end = (self._upstream.status, "")
            self._upstream.release()
        except (TimeoutError, aiohttp.ClientError) as exc:
            # Headers are sent: the client sees a body cut short, the record says why.
            log.warning(
                "request_id=%s binary answer from %s broke: %s",
                self._account.request_id,
                self._name,
                type(exc).__name__,
            )
            self._end = (self._upstream.status, "stream_interrupted")


class KeepAliveStream(StreamingResponse):
    """A stream committed to the client before any deployment has answered: SSE comments keep
    idle-connection timeouts in front of the app from closing it while the attempts go on;
    their outcome is then relayed, or told as an SSE error event."""

    def __init__(
        self,
        attempts: asyncio.Future[Response],
        every: float,
        account: Account,
        headers: dict[str, str],
    ):
        self._attempts = attempts
        self._every = every
        self._account = account
        self._failure: tuple[int, str] = (200, "")
        self._numbered = 0 if account.operation == "responses" else None
        self._inner: RelayedStream | None = None
        super().__init__(
            self._body(), status_code=200, headers=headers, media_type="text/event-stream"
        )

    async def _body(self) -> AsyncIterator[bytes]:
        # The dispatcher waited one interval before answering with this stream: the first
        # comment is due now, the next ones every interval.
        while not self._attempts.done():
            yield b": keep-alive\n\n"
            await asyncio.wait({self._attempts}, timeout=self._every)
        try:
            outcome = self._attempts.result()
        except GatewayError as exc:
            self._failure = (exc.status, exc.code or "")
            yield _error_event(exc.message, exc.type, exc.code, self._numbered)
            return
        if isinstance(outcome, RelayedStream):
            self._inner = outcome
            async for chunk in outcome.body_iterator:
                yield bytes(chunk) if not isinstance(chunk, str) else chunk.encode()
            return
        yield _error_event(*_error_of(outcome), self._numbered)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await relay_until_disconnect(self, receive, send)
        finally:
            self._attempts.cancel()
            if self._inner is not None:
                self._inner.finish()
            else:  # a no-op when the attempts closed it already
                self._account.close_error(*self._failure)


async def relay_until_disconnect(response: StreamingResponse, receive: Any, send: Any) -> None:
    """Send the stream until it ends or the client leaves, whichever comes first.

    Starlette does the same with an anyio task group per response; a plain task that watches
    for the disconnect and cancels the relay when it comes costs a fraction of that."""
    relay = asyncio.current_task()
    if relay is None:  # not in a task: nothing to cancel
        await response.stream_response(send)
        return
    watch = _DisconnectWatch(receive, relay)
    try:
        await response.stream_response(send)
    except asyncio.CancelledError:
        if not watch.client_gone:
            raise
        relay.uncancel()  # the client left: the relay ends here, the request does not fail
    finally:
        watch.stop()


class _DisconnectWatch:
    """Cancels the relaying task when the client disconnects."""

    def __init__(self, receive: Any, relay: asyncio.Task[Any]):
        self.client_gone = False
        self._relay = relay
        self._task = asyncio.get_running_loop().create_task(_until_disconnect(receive))
        self._task.add_done_callback(self._gone)

    def _gone(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is None:
            self.client_gone = True
            self._relay.cancel()

    def stop(self) -> None:
        self._task.remove_done_callback(self._gone)
        self._task.cancel()


async def _until_disconnect(receive: Any) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _error_event(message: str, type_: str, code: str | None, sequence: int | None) -> bytes:
    """A stream's last event: chat's `data: {"error": ...}`, or, in a Responses stream (its
    next sequence number given), an `error` event as the Responses API sends it."""
    if sequence is None:
        return b"data: " + error_body(message, type=type_, code=code) + b"\n\n"
    event = {
        "type": "error",
        "code": code,
        "message": message,
        "param": None,
        "sequence_number": sequence,
    }
    return b"event: error\ndata: " + json.dumps(event).encode() + b"\n\n"


def _next_sequence(sent: bytes) -> int:
    """One after the last `sequence_number` in what was sent (0 when none was)."""
    match = _LAST_SEQUENCE.search(sent)
    return int(match.group(1)) + 1 if match else 0


_LAST_SEQUENCE = re.compile(rb'.*"sequence_number":\s*(\d+)', re.DOTALL)


def _error_of(response: Response) -> tuple[str, str, str | None]:
    """The message, type and code of an upstream's error answer, or a generic one."""
    try:
        error = json.loads(bytes(response.body)).get("error") or {}
        return str(error["message"]), str(error.get("type") or "upstream_error"), error.get("code")
    except (ValueError, KeyError, AttributeError, TypeError):
        return f"The upstream answered {response.status_code}.", "upstream_error", None
