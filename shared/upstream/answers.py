"""Turning an upstream's response into the client's answer: which headers pass, an error
scrubbed of the key, a body read whole or relayed as it streams, and the account closed on what
the answer says."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import aiohttp
from starlette.responses import Response

from shared.errors import GatewayError
from shared.upstream.call import transport_error
from shared.upstream.scrub import error_answer, headers_without_key
from shared.upstream.streams import ByteStream, RelayedStream
from shared.upstream.upstreams import Upstream
from shared.usage.account import Account
from shared.usage.stream_tap import UsageTap

log = logging.getLogger("tollgate.relay")

# Headers the gateway owns or that describe the upstream hop, never relayed to the client.
_DROPPED = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "content-encoding",
        "date",
        "server",
        "set-cookie",
        "upgrade",
        "trailer",
        "te",
        "proxy-authenticate",
        "www-authenticate",
        "x-request-id",
        "api-key",
        "authorization",
    }
)
_OWNED_PREFIXES = ("x-ratelimit-", "x-tollgate-")
# An upstream answering these is misconfigured (key, deployment, network rule): try another.
MISCONFIGURED = frozenset({401, 403, 404})


def tokenless(
    status: int, body: bytes, key: str, headers: dict[str, str], account: Account
) -> Response:
    """An answer in which nothing was generated, relayed (an error scrubbed of the key)."""
    account.first_byte()
    if status >= 400:
        answer = error_answer(status, body, key, headers)
        account.close_error(status, "upstream_error")
        return answer
    account.close_error(status, None)
    return Response(content=body, status_code=status, headers=headers)


def rejected(resp: aiohttp.ClientResponse, upstream: Upstream) -> GatewayError:
    """A deployment refusing the gateway itself (its key, its name, a network rule)."""
    resp.release()
    log.error("upstream %s answered %s", upstream.name, resp.status)
    message = "The upstream deployment rejected the gateway."
    return GatewayError(502, message, type="upstream_error", code="upstream_rejected")


async def relayed_answer(
    resp: aiohttp.ClientResponse,
    upstream: Upstream,
    request_id: str,
    tap: UsageTap | None,
    account: Account,
    key: str,
) -> Response:
    """The answer the client gets from the upstream response chosen for it (a stream, with
    the tap that watches it, when one was asked for and the upstream began one)."""
    relayed = relayed_headers(resp.headers, request_id, upstream.name)
    headers = headers_without_key(relayed, key)
    if tap is not None and resp.status == 200:
        headers.setdefault("cache-control", "no-cache")
        headers["x-accel-buffering"] = "no"
        return RelayedStream(resp, upstream.name, tap, account, headers)
    body = await read_whole(resp, upstream)
    if resp.status == 200 and account.guard is not None:
        body = await checked_answer(body, account)
    account.first_byte()
    if resp.status >= 400:
        answer = error_answer(resp.status, body, key, headers)
        account.close_body(resp.status, bytes(answer.body))
        return answer
    account.close_body(resp.status, body)
    return Response(
        content=body, status_code=resp.status, headers={**headers, **account.cost_header()}
    )


async def checked_answer(body: bytes, account: Account) -> bytes:
    """The answer as the content policy lets it through: rewritten when it fired. When the check
    cannot be made and the policy fails closed, the answer is withheld (503), its usage still
    charged."""
    assert account.guard is not None
    try:
        body, verdict = await account.guard.whole(body)
    except GatewayError as exc:
        account.close_withheld(exc.status, exc.code or "", body)
        raise
    if verdict is not None:
        account.checked("answer", verdict)
    return body


def binary_answer(
    resp: aiohttp.ClientResponse,
    upstream: Upstream,
    request_id: str,
    account: Account,
    key: str,
) -> ByteStream:
    """Audio, or a file's content: relayed as it comes, never read whole."""
    relayed = relayed_headers(resp.headers, request_id, upstream.name)
    return ByteStream(resp, upstream.name, account, headers_without_key(relayed, key))


async def read_whole(resp: aiohttp.ClientResponse, upstream: Upstream) -> bytes:
    """The whole body, the connection released; a transport failure as the gateway's error."""
    try:
        return await resp.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise transport_error(upstream, exc) from None
    finally:
        resp.release()


def relayed_headers(
    upstream: Mapping[str, str], request_id: str, upstream_name: str
) -> dict[str, str]:
    # Lower-cased, so that the gateway's own additions (cache-control on a stream) replace
    # the upstream's rather than repeat them.
    headers = {
        lower: value
        for name, value in upstream.items()
        if (lower := name.lower()) not in _DROPPED and not lower.startswith(_OWNED_PREFIXES)
    }
    upstream_request_id = upstream.get("x-request-id")
    if upstream_request_id:
        headers["x-upstream-request-id"] = upstream_request_id
    headers["x-request-id"] = request_id
    headers["x-tollgate-upstream"] = upstream_name
    return headers
