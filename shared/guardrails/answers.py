"""An answer checked before it is delivered: a whole one rewritten as Azure OpenAI filters its
own (the text withheld, `finish_reason: content_filter`, the categories that fired), a streamed
one ended with a last chunk saying so and an error event."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from shared.errors import error_body
from shared.guardrails.checks import ContentChecks
from shared.guardrails.policy import ContentPolicy
from shared.guardrails.texts import answer_text
from shared.guardrails.verdict import Verdict, answer_message, filter_result
from shared.routes import Operation


@dataclass(frozen=True)
class AnswerGuard:
    """What an account needs to check its answer: the checks, the policy, the operation."""

    checks: ContentChecks
    policy: ContentPolicy
    operation: Operation

    async def whole(self, body: bytes) -> tuple[bytes, Verdict | None]:
        """The body to deliver (rewritten if it fired) and the verdict (None: not checked)."""
        try:
            answer = json.loads(body)
        except ValueError:
            return body, None
        if not isinstance(answer, dict):
            return body, None
        verdict = await self.checks.answer(self.policy, answer_text(self.operation, answer))
        if not verdict.blocked:
            return body, verdict
        return json.dumps(_filtered(self.operation, answer, verdict)).encode(), verdict


def _filtered(operation: Operation, answer: dict[str, Any], verdict: Verdict) -> dict[str, Any]:
    result = filter_result(verdict.blocked)
    if operation is Operation.RESPONSES:
        return {
            **answer,
            "status": "incomplete",
            "incomplete_details": {"reason": "content_filter"},
            "output": [],
        }
    choices = []
    for choice in answer.get("choices") or []:
        if not isinstance(choice, dict):
            continue
        kept = {**choice, "finish_reason": "content_filter", "content_filter_results": result}
        if isinstance(choice.get("message"), dict):
            kept["message"] = {"role": "assistant", "content": None, "refusal": None}
        if "text" in choice:
            kept["text"] = ""
        choices.append(kept)
    return {**answer, "choices": choices}


def stream_ending(
    operation: Operation, verdict: Verdict, first: dict[str, Any], sequence: int | None
) -> bytes:
    """A blocked stream's end: a chunk with `finish_reason: content_filter` (chat and
    completions), then an error event (`code: content_filter`); no `[DONE]`."""
    message = answer_message(verdict)
    if operation is Operation.RESPONSES:
        event = {
            "type": "error",
            "code": "content_filter",
            "message": message,
            "param": None,
            "sequence_number": sequence or 0,
        }
        return b"event: error\ndata: " + json.dumps(event).encode() + b"\n\n"
    result = filter_result(verdict.blocked)
    if operation is Operation.COMPLETIONS:
        choice: dict[str, Any] = {"text": "", "index": 0, "logprobs": None}
        kind = "text_completion"
    else:
        choice = {"index": 0, "delta": {}, "logprobs": None}
        kind = "chat.completion.chunk"
    choice |= {"finish_reason": "content_filter", "content_filter_results": result}
    chunk = {
        "id": first.get("id", ""),
        "object": kind,
        "created": first.get("created", 0),
        "model": first.get("model", ""),
        "choices": [choice],
    }
    error = error_body(message, type="invalid_request_error", code="content_filter")
    return b"data: " + json.dumps(chunk).encode() + b"\n\ndata: " + error + b"\n\n"
