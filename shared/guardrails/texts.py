"""The text a content check reads: a request's prompt (and, for Prompt Shields, the documents
it carries: tool results and function outputs), an answer's text, a streamed event's text."""

from __future__ import annotations

import json
from typing import Any

from shared.routes import Operation

_PROMPT_ROLES = frozenset({"user", "system", "developer", "assistant"})
_DOCUMENT_ROLES = frozenset({"tool", "function"})


def prompt_texts(operation: Operation, body: dict[str, Any]) -> tuple[str, list[str]]:
    """(the prompt, the documents) of a request."""
    if operation is Operation.CHAT:
        return _messages(body.get("messages"))
    if operation is Operation.RESPONSES:
        return _responses_input(body.get("input"), body.get("instructions"))
    prompt = body.get("prompt")
    if isinstance(prompt, list):
        return "\n".join(p for p in prompt if isinstance(p, str)), []
    return (prompt if isinstance(prompt, str) else ""), []


def _messages(messages: Any) -> tuple[str, list[str]]:
    prompt, documents = [], []
    for message in messages if isinstance(messages, list) else []:
        if not isinstance(message, dict):
            continue
        text = content_text(message.get("content"))
        if message.get("role") in _DOCUMENT_ROLES:
            documents.append(text)
        elif message.get("role") in _PROMPT_ROLES:
            prompt.append(text)
    return "\n".join(t for t in prompt if t), [d for d in documents if d]


def _responses_input(items: Any, instructions: Any) -> tuple[str, list[str]]:
    prompt = [instructions] if isinstance(instructions, str) else []
    if isinstance(items, str):
        return "\n".join([*prompt, items]), []
    documents = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "function_call_output":
            output = item.get("output")
            documents.append(output if isinstance(output, str) else content_text(output))
        elif "content" in item:
            prompt.append(content_text(item["content"]))
    return "\n".join(t for t in prompt if t), [d for d in documents if d]


def content_text(content: Any) -> str:
    """A message's text: a string, or its text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def answer_text(operation: Operation, answer: dict[str, Any]) -> str:
    """The text of a whole answer."""
    if operation is Operation.RESPONSES:
        return "\n".join(
            content_text(item.get("content"))
            for item in answer.get("output") or []
            if isinstance(item, dict) and item.get("type") == "message"
        )
    parts = []
    for choice in answer.get("choices") or []:
        if not isinstance(choice, dict):
            continue
        message = choice.get("message")
        if isinstance(message, dict):
            parts += [message.get("content"), message.get("refusal")]
        parts.append(choice.get("text"))
    return "\n".join(p for p in parts if isinstance(p, str) and p)


def event_text(payload: bytes) -> str:
    """The text one streamed event adds (chat, completions or Responses API)."""
    try:
        event = json.loads(payload)
    except ValueError:
        return ""
    if not isinstance(event, dict):
        return ""
    if event.get("type") == "response.output_text.delta":
        delta = event.get("delta")
        return delta if isinstance(delta, str) else ""
    parts = []
    for choice in event.get("choices") or []:
        if not isinstance(choice, dict):
            continue
        delta = choice.get("delta")
        if isinstance(delta, dict):
            parts += [delta.get("content"), delta.get("refusal")]
        parts.append(choice.get("text"))
    return "".join(p for p in parts if isinstance(p, str))
