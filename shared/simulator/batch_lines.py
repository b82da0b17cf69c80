"""A batch's input file: its JSONL lines checked as OpenAI checks them, then each line answered
with the simulator's own non-streamed answer (answers.answer) into output and error lines, and
the batch's usage, the sum of its output lines' usage."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from . import errors
from .answers import answer

# A batch's `endpoint` and the operation its lines run; Azure also names them without `/v1`.
_ENDPOINTS = {
    "/v1/chat/completions": "chat",
    "/v1/embeddings": "embeddings",
    "/v1/completions": "completions",
    "/v1/responses": "responses",
}
ENDPOINTS = {**_ENDPOINTS, **{path.removeprefix("/v1"): op for path, op in _ENDPOINTS.items()}}
_MAX_PROBLEMS = 100  # reported of a malformed file, as OpenAI caps its `errors`


@dataclass(frozen=True, slots=True)
class Line:
    custom_id: str
    body: dict[str, Any]
    model: str


def _problem(line: int, code: str, message: str, param: str | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "param": param, "line": line}


def _check(number: int, text: str, endpoint: str, seen: set[str]) -> Line | dict[str, Any]:
    """One input line, or the problem OpenAI reports for it."""
    try:
        item = json.loads(text)
    except ValueError:
        item = None
    if not isinstance(item, dict):
        return _problem(number, "invalid_json_line", "This line is not parseable as valid JSON.")
    custom_id, body = item.get("custom_id"), item.get("body")
    if not isinstance(custom_id, str) or not custom_id:
        message = "The request is missing the required parameter 'custom_id'."
        return _problem(number, "missing_required_parameter", message, "custom_id")
    if custom_id in seen:
        message = "The custom_id for this request is a duplicate of another request."
        return _problem(number, "duplicate_custom_id", message, "custom_id")
    seen.add(custom_id)
    if item.get("method") != "POST":
        message = "The method for this request is not supported: it must be 'POST'."
        return _problem(number, "invalid_method", message, "method")
    url = item.get("url")
    if not isinstance(url, str) or url.removeprefix("/v1") != endpoint.removeprefix("/v1"):
        message = f"The URL of this request does not match the batch's endpoint, '{endpoint}'."
        return _problem(number, "invalid_url", message, "url")
    if not isinstance(body, dict):
        message = "The request is missing the required parameter 'body'."
        return _problem(number, "missing_required_parameter", message, "body")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        message = "The request's body is missing the required parameter 'model'."
        return _problem(number, "missing_required_parameter", message, "body.model")
    return Line(custom_id, body, model)


def parse_lines(data: bytes, endpoint: str) -> tuple[list[Line], list[dict[str, Any]]]:
    """The file's requests, and its problems (any problem fails the whole batch)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return [], [_problem(1, "invalid_file_format", "The input file is not UTF-8 text.")]
    lines: list[Line] = []
    problems: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        checked = _check(number, raw, endpoint, seen)
        if isinstance(checked, Line):
            lines.append(checked)
        elif len(problems) < _MAX_PROBLEMS:
            problems.append(checked)
    if not lines and not problems:
        problems.append(_problem(1, "empty_file", "The batch input file is empty."))
    return lines, problems


@dataclass(slots=True)
class BatchRun:
    """The answered lines of a batch."""

    output: list[str] = field(default_factory=list)  # JSONL lines of the output file
    failed: list[str] = field(default_factory=list)  # JSONL lines of the error file
    totals: dict[str, int] = field(default_factory=dict)

    def usage(self) -> dict[str, Any]:
        return usage_block(self.totals)


def usage_block(totals: dict[str, int]) -> dict[str, Any]:
    """The batch object's `usage` from summed counts (all zero when ``totals`` is empty)."""
    return {
        "input_tokens": totals.get("input", 0),
        "input_tokens_details": {"cached_tokens": totals.get("cached", 0)},
        "output_tokens": totals.get("output", 0),
        "output_tokens_details": {"reasoning_tokens": totals.get("reasoning", 0)},
        "total_tokens": totals.get("total", 0),
    }


def _counts(usage: dict[str, Any]) -> dict[str, int]:
    """One answer's usage, in chat's, completions', embeddings' or the Responses API's shape."""
    given = usage.get("input_tokens", usage.get("prompt_tokens", 0))
    made = usage.get("output_tokens", usage.get("completion_tokens", 0))
    in_details = usage.get("input_tokens_details") or usage.get("prompt_tokens_details") or {}
    out_details = usage.get("output_tokens_details") or usage.get("completion_tokens_details") or {}
    return {
        "input": given,
        "cached": in_details.get("cached_tokens", 0),
        "output": made,
        "reasoning": out_details.get("reasoning_tokens", 0),
        "total": usage.get("total_tokens", given + made),
    }


def _request_id(azure: bool) -> str:
    return str(uuid.uuid4()) if azure else "req_" + uuid.uuid4().hex


def _output_line(custom_id: str, status: int, body: Any, azure: bool, error: Any) -> str:
    response = {"status_code": status, "request_id": _request_id(azure), "body": body}
    line = {"id": "batch_req_" + uuid.uuid4().hex, "custom_id": custom_id}
    return json.dumps({**line, "response": response, "error": error}, separators=(",", ":"))


def _error_of(failure: errors.ApiError) -> dict[str, Any]:
    inner = failure.body.get("error", {}) if isinstance(failure.body, dict) else {}
    code = inner.get("code") or str(failure.status)
    return {"code": code, "message": inner.get("message", "The request failed.")}


def run_lines(lines: list[Line], operation: str, azure: bool, natural: int) -> BatchRun:
    """Answer every line: successes to the output file, failures (an unknown model, a body the
    endpoint refuses) to the error file, with the status and body the endpoint would answer."""
    run = BatchRun()
    for line in lines:
        try:
            body = answer(operation, line.body, line.model, azure, natural)
        except errors.ApiError as failure:
            run.failed.append(
                _output_line(
                    line.custom_id, failure.status, failure.body, azure, _error_of(failure)
                )
            )
            continue
        run.output.append(_output_line(line.custom_id, 200, body, azure, None))
        for name, count in _counts(body.get("usage") or {}).items():
            run.totals[name] = run.totals.get(name, 0) + count
    return run
