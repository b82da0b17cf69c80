"""What a JSON body must be before anything else reads it: nested at most MAX_DEPTH deep, every
string encodable as UTF-8, and the fields the gateway itself interprets of the right type.

The checks name what is wrong (and the field, as OpenAI's `param`), never the content.
"""

from __future__ import annotations

import re
from typing import Any

from shared.errors import GatewayError, bad_request

MAX_DEPTH = 128  # far above any real request (tool schemas nest a few dozen levels at most)
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")
_CONTAINERS = (dict, list)


def check_structure(raw: bytes, body: Any) -> None:
    """400 `invalid_json` for a body nested too deeply or holding an unencodable string.

    Both are rare, so the full walk runs only when the raw text could hold one: more brackets
    than MAX_DEPTH, or a \\uD800-\\uDFFF escape (the only way JSON spells a lone surrogate).
    """
    deep = raw.count(b"[") + raw.count(b"{") > MAX_DEPTH
    surrogates = _SURROGATE_ESCAPE.search(raw) is not None
    if deep or surrogates:
        _walk(body)


def _walk(body: Any) -> None:
    stack: list[tuple[Any, int]] = [(body, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise too_deep()
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(key, str):
                _encodable(key)
            if isinstance(item, str):
                _encodable(item)
            elif isinstance(item, _CONTAINERS):
                stack.append((item, depth + 1))


def too_deep() -> GatewayError:
    """Also what json.loads's own RecursionError becomes, for bodies deeper than Python goes."""
    return bad_request(
        f"The request body is nested more than {MAX_DEPTH} levels deep.", "invalid_json"
    )


def _encodable(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise bad_request(
            "The request body holds a string that is not valid Unicode (an unpaired surrogate "
            "escape such as \\ud800).",
            "invalid_json",
        ) from None


_TOKEN_FIELDS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
MAX_N = 128


def check_interpreted_fields(body: dict[str, Any]) -> None:
    """The fields the gateway reads for itself (streaming, reservations) have OpenAI's types and
    ranges; everything else is the upstream's to judge."""
    _expect(body, "stream", bool)
    options = _expect(body, "stream_options", dict)
    if options is not None:
        _expect(options, "include_usage", bool, "stream_options.include_usage")
    for name in _TOKEN_FIELDS:
        _at_least(body, name, 1)
    for name in ("n", "best_of"):  # best_of: the legacy completions API's
        copies = _at_least(body, name, 1)
        if copies is not None and copies > MAX_N:
            raise bad_request(
                f"Invalid '{name}': integer above maximum value. Expected a value <= {MAX_N}, "
                f"but got {copies} instead.",
                "integer_above_max_value",
                name,
            )


def _expect(body: dict[str, Any], name: str, kind: type, param: str | None = None) -> Any:
    value = body.get(name)
    posing = kind is int and isinstance(value, bool)  # JSON true is no integer
    if value is None or (isinstance(value, kind) and not posing):
        return value
    param = param or name
    raise bad_request(
        f"Invalid type for '{param}': expected {_NAMES[kind]}, but got {_name_of(value)} instead.",
        "invalid_type",
        param,
    )


def _at_least(body: dict[str, Any], name: str, low: int) -> int | None:
    value = _expect(body, name, int)
    if value is not None and value < low:
        raise bad_request(
            f"Invalid '{name}': integer below minimum value. Expected a value >= {low}, but got "
            f"{value} instead.",
            "integer_below_min_value",
            name,
        )
    return value  # type: ignore[no-any-return]


_NAMES: dict[type, str] = {
    bool: "a boolean",
    int: "an integer",
    dict: "an object",
    str: "a string",
    list: "an array",
    float: "a decimal number",
}


def _name_of(value: Any) -> str:
    for kind in (bool, int, float, str, list, dict):
        if isinstance(value, kind):
            return _NAMES[kind]
    return "a value of another type"
