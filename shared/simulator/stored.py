"""Stored Responses API answers: one entry per response id, kept with the reply it was made from
(so that its stream can be replayed), its background-mode life (queued, then completed or
incomplete, or cancelled), and the answers of retrieve, delete, cancel and input_items."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from . import content, errors
from .responses import ResponseReply

STORED_LIMIT = 10_000
_INTEGER_RE = re.compile(r"-?\d+")


@dataclass(slots=True)
class StoredResponse:
    reply: ResponseReply
    items: list[dict[str, Any]]  # its input, as input_items lists it back
    model: str  # as requested: what faults on a resumed stream match
    done_at: float  # time.monotonic() at which it reaches its final state
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def background(self) -> bool:
        return self.reply.background

    def status(self) -> str:
        if self.cancelled.is_set():
            return "cancelled"
        return self.reply.final_status if time.monotonic() >= self.done_at else "queued"

    def body(self) -> dict[str, Any]:
        return self.reply.response(self.status())

    def cancel(self) -> dict[str, Any]:
        """Cancel it if it is a background response not yet done; answer its state."""
        if not self.background:
            raise errors.bad_request(
                "Only responses created with background=true can be cancelled."
            )
        if self.status() == "queued":
            self.cancelled.set()
        return self.body()

    async def settle(self) -> bool:
        """Wait until it is done (True) or cancelled (False), at most until its done time."""
        remaining = self.done_at - time.monotonic()
        if remaining > 0 and not self.cancelled.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.cancelled.wait(), remaining)
        return not self.cancelled.is_set()


def store(
    entries: dict[str, StoredResponse],
    reply: ResponseReply,
    model: str,
    done_in_ms: float,
) -> None:
    """Keep ``reply`` (unless its request said ``store: false``), final ``done_in_ms`` from now."""
    if reply.body.get("store", True) is False:
        return
    while len(entries) >= STORED_LIMIT:
        entries.pop(next(iter(entries)))
    done_at = time.monotonic() + done_in_ms / 1000
    entries[reply.response_id] = StoredResponse(reply, input_items(reply.body), model, done_at)


def input_items(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The request's input as the API lists it back: message items with ids."""
    value = body.get("input")
    items = [{"role": "user", "content": value}] if isinstance(value, str) else value
    listed = []
    for item in items if isinstance(items, list) else ():
        if isinstance(item, dict):
            text = content.message_text(item)
            listed.append(
                {
                    "id": "msg_" + uuid.uuid4().hex,
                    "type": "message",
                    "role": item.get("role", "user"),
                    "status": "completed",
                    "content": [{"type": "input_text", "text": text}],
                }
            )
    return listed


def find(entries: dict[str, StoredResponse], response_id: str) -> StoredResponse:
    entry = entries.get(response_id)
    if entry is None:
        message = f"Response with id '{response_id}' not found."
        raise errors.ApiError(404, errors.openai_body(message, "invalid_request_error", None))
    return entry


def starting_after(value: str | None) -> int:
    """The ``starting_after`` query parameter of a resumed stream; -1 (all events) if absent."""
    if value is None:
        return -1
    if not _INTEGER_RE.fullmatch(value) or int(value) < -1:
        message = "Invalid 'starting_after': expected an integer >= -1."
        raise errors.bad_request(message, "starting_after")
    return int(value)


def stored_answer(
    entries: dict[str, StoredResponse], response_id: str, method: str, action: str
) -> dict[str, Any]:
    """GET (retrieve), DELETE, POST .../cancel or GET .../input_items on a stored response."""
    entry = find(entries, response_id)
    if action == "input_items":
        items = entry.items
        first, last = (items[0]["id"], items[-1]["id"]) if items else (None, None)
        return {
            "object": "list",
            "data": items,
            "first_id": first,
            "last_id": last,
            "has_more": False,
        }
    if method == "DELETE":
        del entries[response_id]
        return {"id": response_id, "object": "response.deleted", "deleted": True}
    if action == "cancel":
        return entry.cancel()
    return entry.body()
