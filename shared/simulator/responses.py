"""The Responses API's create call: its answer as one JSON object, or as its stream of events
(`event:` and `data:` lines with a `sequence_number`, usage only in the terminal event); and the
input token count of a create call's body (`POST /responses/input_tokens`)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from . import content, errors
from .wire import dumps


@dataclass(frozen=True, slots=True)
class ResponseReply:
    response_id: str
    message_id: str
    created: int
    model: str
    text_pieces: list[str]
    input_tokens: int
    incomplete: bool  # cut short by max_output_tokens
    body: dict[str, Any]  # the request, for the echoed fields

    @property
    def text(self) -> str:
        return " ".join(self.text_pieces)

    @property
    def background(self) -> bool:
        return self.body.get("background") is True

    def usage(self, cancelled: bool = False) -> dict[str, Any]:
        """The usage block; a cancelled background response has spent only its input."""
        output = 0 if cancelled else len(self.text_pieces)
        return {
            "input_tokens": self.input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": self.input_tokens + output,
        }

    def message(self, done: bool) -> dict[str, Any]:
        parts = [self.text_part(self.text)] if done else []
        status = "completed" if done else "in_progress"
        return {
            "id": self.message_id,
            "type": "message",
            "status": status,
            "role": "assistant",
            "content": parts,
        }

    @staticmethod
    def text_part(text: str) -> dict[str, Any]:
        return {"type": "output_text", "text": text, "annotations": []}

    def response(self, status: str) -> dict[str, Any]:
        done = status in ("completed", "incomplete")
        spent = done or status == "cancelled"
        body = self.body
        return {
            "id": self.response_id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"}
            if status == "incomplete"
            else None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "model": self.model,
            "output": [self.message(True)] if done else [],
            "parallel_tool_calls": True,
            "previous_response_id": body.get("previous_response_id"),
            "store": body.get("store", True),
            "background": self.background,
            "temperature": body.get("temperature", 1.0),
            "text": {"format": {"type": "text"}},
            "tool_choice": "auto",
            "tools": [],
            "top_p": body.get("top_p", 1.0),
            "truncation": "disabled",
            "usage": self.usage(cancelled=not done) if spent else None,
            "metadata": body.get("metadata") or {},
        }

    @property
    def final_status(self) -> str:
        return "incomplete" if self.incomplete else "completed"


def responses_reply(body: Any, model: str, azure: bool, natural_length: int) -> ResponseReply:
    """The answer to a create call, or ApiError for a body the API refuses."""
    messages, input_tokens = _prompt(body)
    _check_background(body)
    limit = body.get("max_output_tokens")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise errors.bad_request(
            "'max_output_tokens' must be a positive integer", "max_output_tokens"
        )
    length = natural_length if limit is None else min(natural_length, limit)
    return ResponseReply(
        response_id="resp_" + uuid.uuid4().hex,
        message_id="msg_" + uuid.uuid4().hex,
        created=int(time.time()),
        model=content.response_model(model, azure),
        text_pieces=content.reply_pieces(content.last_user_text(messages), length),
        input_tokens=input_tokens,
        incomplete=length < natural_length,
        body=body,
    )


def input_tokens_body(body: Any) -> bytes:
    """The answer to ``POST /responses/input_tokens``: the create call's ``usage.input_tokens``."""
    _, count = _prompt(body)
    return dumps({"object": "response.input_tokens", "input_tokens": count}).encode()


def _prompt(body: Any) -> tuple[list[dict[str, Any]], int]:
    """The request's input as messages, and its input tokens (the instructions included)."""
    if not isinstance(body, dict):
        raise errors.bad_request("We could not parse the JSON body of your request.")
    messages = _messages(body.get("input"))
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise errors.bad_request("'instructions' must be a string", "instructions")
    prompt = messages + ([{"role": "system", "content": instructions}] if instructions else [])
    return messages, content.prompt_tokens(prompt)


def _check_background(body: dict[str, Any]) -> None:
    background = body.get("background")
    if background is not None and not isinstance(background, bool):
        raise errors.bad_request("'background' must be a boolean", "background")
    if background and body.get("store", True) is False:
        raise errors.bad_request("Background mode requires 'store' to be true.", "background")


def _messages(value: Any) -> list[dict[str, Any]]:
    """`input` as messages: a string is one user message; items of other types are skipped."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list) or not value:
        raise errors.bad_request("'input' must be a string or a non-empty array", "input")
    messages = []
    for item in value:
        if not isinstance(item, dict):
            raise errors.bad_request("each input item must be an object", "input")
        if item.get("type", "message") == "message" and "role" in item:
            text = content.message_text(item)
            messages.append({"role": item["role"], "content": text})
    return messages


def response_body(reply: ResponseReply) -> bytes:
    return dumps(reply.response(reply.final_status)).encode()


class EventEncoder:
    """The stream's frames, numbered in order."""

    def __init__(self, reply: ResponseReply) -> None:
        self._reply = reply
        self._sequence = 0

    def _frame(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return f"event: {kind}\ndata: {dumps(data)}\n\n".encode()

    def opening(self) -> list[bytes]:
        reply = self._reply
        part = reply.text_part("")
        return [
            self._frame("response.created", response=reply.response("in_progress")),
            self._frame("response.in_progress", response=reply.response("in_progress")),
            self._frame("response.output_item.added", output_index=0, item=reply.message(False)),
            self._frame(
                "response.content_part.added",
                item_id=reply.message_id,
                output_index=0,
                content_index=0,
                part=part,
            ),
        ]

    def delta(self, text: str) -> bytes:
        return self._frame(
            "response.output_text.delta",
            item_id=self._reply.message_id,
            output_index=0,
            content_index=0,
            delta=text,
            logprobs=[],
        )

    def cancelled(self) -> list[bytes]:
        """What a stream of a response cancelled before it finished shows: its first events."""
        reply = self._reply
        return [
            self._frame("response.created", response=reply.response("in_progress")),
            self._frame("response.in_progress", response=reply.response("in_progress")),
        ]

    def closing(self) -> list[bytes]:
        reply = self._reply
        where = {"item_id": reply.message_id, "output_index": 0, "content_index": 0}
        return [
            self._frame("response.output_text.done", **where, text=reply.text, logprobs=[]),
            self._frame("response.content_part.done", **where, part=reply.text_part(reply.text)),
            self._frame("response.output_item.done", output_index=0, item=reply.message(True)),
            self._frame(
                f"response.{reply.final_status}", response=reply.response(reply.final_status)
            ),
        ]
