"""Files and batches as each system sees them: only its own, on the files resource; another
system's is answered as if it did not exist, and lists are filtered to the caller's."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from shared.errors import GatewayError, bad_request, not_found
from shared.gateway import Gateway
from shared.registry.systems import Caller
from shared.routes import Route, Style
from shared.upstream.objects import entry_of
from shared.upstream.upstreams import Upstream
from shared.usage.account import Account

FILE_ID = re.compile(r"^file-[A-Za-z0-9_-]{1,128}$")
BATCH_ID = re.compile(r"^batch_[A-Za-z0-9_-]{1,128}$")
MAX_PAGES = 20  # upstream pages read to fill one filtered page
_UPSTREAM_PAGE = 100


def files_upstream(gateway: Gateway) -> Upstream:
    upstream = gateway.config.files
    if upstream is None:
        message = "This gateway serves no files or batches: its configuration names no 'files'."
        raise not_found(message, "files_not_served")
    return upstream


async def own(gateway: Gateway, caller: Caller, object_id: str, kind: str) -> dict[str, Any]:
    """The gateway's entry for the caller's own file or batch; 404 for anyone else's."""
    pattern = FILE_ID if kind == "file" else BATCH_ID
    entry = await entry_of(gateway.objects, object_id) if pattern.match(object_id) else None
    if entry is None or entry.get("system") != caller.system.id:  # never tell which
        name = "File" if kind == "file" else "Batch"
        raise not_found(f"No such {name} object: {object_id[:64]}", f"{kind}_not_found")
    return entry


async def admit_request(
    gateway: Gateway, caller: Caller, account: Account, model: str = ""
) -> None:
    """A call on files or batches counts against the caller's request limits (with `model`,
    its model's too); an estimate of one token refuses it once a token quota is spent."""
    scopes = caller.scopes(model)
    if scopes:
        reservation = await gateway.limiter.admit(caller.system.id, scopes, 1 if model else 0)
        account.reserved(gateway.limiter, reservation)


def referenced_files(body: dict[str, Any]) -> list[str]:
    """The file ids a chat or Responses API request reads (`file` and `input_file` parts)."""
    found: list[str] = []
    for item in _items(body.get("messages")) + _items(body.get("input")):
        for part in [item, *_items(item.get("content"))]:
            kind = part.get("type")
            if kind == "input_file":
                file_id = part.get("file_id")
            elif kind == "file" and isinstance(part.get("file"), dict):
                file_id = part["file"].get("file_id")
            else:
                continue
            if isinstance(file_id, str):
                found.append(file_id)
    return found


def _items(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


async def own_files(gateway: Gateway, caller: Caller, body: dict[str, Any]) -> None:
    """A request may read only the caller's own files: another's is answered as missing."""
    file_ids = referenced_files(body)
    if not file_ids:
        return
    entries = await gateway.objects.entries(file_ids)
    for file_id, entry in zip(file_ids, entries, strict=True):
        if entry is None or entry.get("system") != caller.system.id:
            raise not_found(f"No such File object: {file_id[:64]}", "file_not_found")


def json_object(body: bytes | memoryview) -> dict[str, Any]:
    try:
        value = json.loads(bytes(body))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


async def own_list(
    gateway: Gateway,
    account: Account,
    caller: Caller,
    request: Request,
    tail: str,
    seen: Callable[[dict[str, Any], dict[str, Any]], Awaitable[None]] | None = None,
) -> Response:
    """A list of the caller's own files or batches, in the upstream's order and paging (`limit`,
    `after`): upstream pages are read and filtered until one page is filled."""
    upstream = files_upstream(gateway)
    limit = _limit(request)
    query = {k: v for k, v in request.query_params.items() if k not in ("api-version", "limit")}
    mine: list[dict[str, Any]] = []
    more = False
    for _ in range(MAX_PAGES):
        page = await _page(gateway, upstream, account, tail, {**query, "limit": _UPSTREAM_PAGE})
        data = [item for item in page.get("data") or [] if isinstance(item, dict)]
        entries = await gateway.objects.entries([str(item.get("id", "")) for item in data])
        for item, entry in zip(data, entries, strict=True):
            if entry is not None and entry.get("system") == caller.system.id:
                mine.append(item)
                if seen is not None:
                    await seen(item, entry)
        more = page.get("has_more") is True
        if len(mine) > limit or not more or not data:
            break
        query["after"] = str(data[-1].get("id", ""))
    more = more or len(mine) > limit
    mine = mine[:limit]
    account.close_error(200, None)
    answer = {
        "object": "list",
        "data": mine,
        "first_id": mine[0].get("id") if mine else None,
        "last_id": mine[-1].get("id") if mine else None,
        "has_more": more,
    }
    return Response(
        json.dumps(answer),
        media_type="application/json",
        headers={"x-request-id": account.request_id},
    )


def _limit(request: Request) -> int:
    given = request.query_params.get("limit", "20")
    if not given.isdigit() or not 1 <= int(given) <= 10_000:
        raise bad_request("'limit' must be a whole number from 1.", "invalid_value", "limit")
    return int(given)


async def _page(
    gateway: Gateway, upstream: Upstream, account: Account, tail: str, query: dict[str, Any]
) -> dict[str, Any]:
    url = upstream.objects_url(tail)
    url += ("&" if "?" in url else "?") + urlencode(query)
    account.deployment = upstream.name
    page = await gateway.dispatcher.peek(upstream, url, account.request_id)
    if not page:
        message = "The upstream resource could not list them now; retry shortly."
        raise GatewayError(502, message, type="upstream_error", code="upstream_error")
    return page


def style_of(route: Route) -> str:
    return (route.style or Style.OPENAI).value
