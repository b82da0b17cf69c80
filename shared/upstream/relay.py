"""Forwarding a request to its model's pool: pick a deployment, fail over, relay the answer."""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from starlette.responses import Response

from shared.auth.secret_cache import CachedSecrets
from shared.errors import GatewayError, server_error
from shared.routes import Operation
from shared.upstream.balancer import Balancer
from shared.upstream.call import call_upstream, transport_error
from shared.upstream.client import UpstreamClient
from shared.upstream.config import PublicModel
from shared.upstream.scrub import error_answer, headers_without_key
from shared.upstream.streams import KeepAliveStream, RelayedStream
from shared.upstream.upstreams import Upstream
from shared.usage.account import Account
from shared.usage.stream_tap import UsageTap
from shared.usage.telemetry import record_failover, record_upstream_error

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
_MISCONFIGURED = frozenset({401, 403, 404})


@dataclass(frozen=True)
class FailoverPolicy:
    max_attempts: int
    budget_seconds: float  # no new attempt starts after this long
    default_cooldown_seconds: float  # a 429 without Retry-After
    total_seconds: float  # a whole non-streamed exchange, every attempt included
    keepalive_seconds: float  # a stream waiting this long is committed and kept alive (0: never)


class Dispatcher:
    def __init__(
        self,
        client: UpstreamClient,
        secrets: CachedSecrets,
        balancer: Balancer,
        policy: FailoverPolicy,
    ):
        self.client, self.secrets, self.balancer, self.policy = client, secrets, balancer, policy

    async def forward(
        self, model: PublicModel, payload: dict[str, Any], request_id: str, account: Account
    ) -> Response:
        """The first good answer from the pool. Failover happens only before anything reached
        the client; the account is closed on every path that returns (the caller closes it when
        this raises), so the client is charged once whatever the attempts."""
        if payload.get("stream") is not True:
            try:
                async with asyncio.timeout(self.policy.total_seconds):
                    return await self._attempts(model, payload, request_id, account)
            except TimeoutError:
                message = "The upstream deployments did not answer in time."
                raise GatewayError(
                    504, message, type="upstream_error", code="upstream_timeout"
                ) from None
        attempts = asyncio.ensure_future(self._attempts(model, payload, request_id, account))
        every = self.policy.keepalive_seconds
        done, _ = await asyncio.wait({attempts}, timeout=every or None)
        if done:
            return attempts.result()
        headers = {
            "cache-control": "no-cache",
            "x-accel-buffering": "no",
            "x-request-id": request_id,
        }
        return KeepAliveStream(attempts, every, account, headers)

    async def _attempts(
        self, model: PublicModel, payload: dict[str, Any], request_id: str, account: Account
    ) -> Response:
        stream = payload.get("stream") is True
        tried: set[str] = set()
        first = ""
        last: Response | GatewayError | None = None
        started = time.monotonic()
        while len(tried) < self.policy.max_attempts:
            if time.monotonic() - started > self.policy.budget_seconds:
                break
            member = await self.balancer.pick(model.pool, tried)
            if member is None:
                break
            upstream = member.upstream
            first = first or upstream.name
            tried.add(upstream.name)
            account.attempts = len(tried)
            body, strip_usage = _body_for(payload, upstream, stream, model.operation)
            try:
                resp, key = await call_upstream(
                    self.client, self.secrets, upstream, model.operation, body, request_id
                )
            except GatewayError as exc:
                timed_out = exc.code == "upstream_timeout"
                record_upstream_error(
                    upstream.name, model.name, "timeout" if timed_out else "unreachable"
                )
                await self.balancer.failed(upstream.name)
                last = exc
                continue
            if resp.status == 429:
                record_upstream_error(upstream.name, model.name, "429")
                resp.release()
                await self.balancer.cool_down(upstream.name, self._cooldown(resp.headers))
                last = None
                continue
            if resp.status >= 500 or resp.status in _MISCONFIGURED:
                record_upstream_error(
                    upstream.name, model.name, "5xx" if resp.status >= 500 else "rejected"
                )
                await self.balancer.failed(upstream.name)
                last = await self._failed_answer(resp, upstream, request_id, key)
                continue
            await self.balancer.succeeded(upstream.name)
            if first != upstream.name:
                record_failover(model.name, first, upstream.name)
                log.info("request_id=%s failover path=%s", request_id, ",".join(sorted(tried)))
            account.deployment = upstream.name
            tap = UsageTap(strip_usage, model.operation) if stream else None
            return await _answer(resp, upstream, request_id, tap, account, key)
        return self._exhausted(model, last, account)

    async def stored(
        self,
        upstream: Upstream,
        method: str,
        url: str,
        request_id: str,
        account: Account,
        stream: bool = False,
    ) -> Response:
        """A call on a stored response, to the one deployment that holds it (no failover: no
        other has it), answered as the upstream answers: a resumed stream relayed as it comes."""
        account.deployment = upstream.name
        account.attempts = 1
        async with asyncio.timeout(None if stream else self.policy.total_seconds):
            resp, key = await self._call_stored(upstream, method, url, request_id)
            headers = headers_without_key(
                relayed_headers(resp.headers, request_id, upstream.name), key
            )
            if stream and resp.status == 200:
                headers.setdefault("cache-control", "no-cache")
                headers["x-accel-buffering"] = "no"
                return RelayedStream(
                    resp, upstream.name, UsageTap(False, Operation.RESPONSES), account, headers
                )
            body = await _read(resp, upstream)
        account.first_byte()
        if resp.status >= 400:
            answer = error_answer(resp.status, body, key, headers)
            account.close_error(resp.status, "upstream_error")
            return answer
        account.close_error(resp.status, None)  # no tokens: nothing is generated
        return Response(content=body, status_code=resp.status, headers=headers)

    async def peek(self, upstream: Upstream, url: str, request_id: str) -> dict[str, Any] | None:
        """The gateway's own look at a stored response: the upstream's JSON object, {} when it
        has none (404), None when it could not say this time."""
        try:
            async with asyncio.timeout(self.policy.total_seconds):
                resp, _ = await self._call_stored(upstream, "GET", url, request_id)
                body = await _read(resp, upstream)
        except (GatewayError, TimeoutError):
            return None
        if resp.status == 404:
            return {}
        try:
            value = json.loads(body) if resp.status == 200 else None
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    async def _call_stored(
        self, upstream: Upstream, method: str, url: str, request_id: str
    ) -> tuple[aiohttp.ClientResponse, str]:
        """A call with no body on a stored response's URL: the response and the key used."""
        target = (method, url)
        return await call_upstream(
            self.client, self.secrets, upstream, Operation.RESPONSES, None, request_id, target
        )

    def _cooldown(self, headers: Mapping[str, str]) -> float:
        return retry_after_seconds(headers) or self.policy.default_cooldown_seconds

    async def _failed_answer(
        self, resp: aiohttp.ClientResponse, upstream: Upstream, request_id: str, key: str
    ) -> Response | GatewayError:
        if resp.status in _MISCONFIGURED:
            resp.release()
            log.error("upstream %s answered %s", upstream.name, resp.status)
            return GatewayError(
                502,
                "The upstream deployment rejected the gateway.",
                type="upstream_error",
                code="upstream_rejected",
            )
        try:
            body = await _read(resp, upstream)
        except GatewayError as exc:
            return exc
        headers = relayed_headers(resp.headers, request_id, upstream.name)
        return error_answer(resp.status, body, key, headers)

    def _exhausted(
        self, model: PublicModel, last: Response | GatewayError | None, account: Account
    ) -> Response:
        """Every attempt failed: the last upstream error, or 503 when every deployment of the
        pool is cooling down or has its breaker open."""
        if isinstance(last, GatewayError):
            raise last
        if last is not None:
            account.deployment = last.headers.get("x-tollgate-upstream", "")
            account.close_body(last.status_code, bytes(last.body))
            return last
        wait_ms = self.balancer.retry_after_ms(model.pool)
        headers = {"retry-after": str(-(-wait_ms // 1000)), "retry-after-ms": str(wait_ms)}
        if model.pinned_for:  # never answered by a deployment without the response's context
            message = (
                f"The deployment that holds response '{model.pinned_for}' is not available "
                f"now; retry in {wait_ms / 1000:.1f}s, or start a new conversation."
            )
            raise server_error(503, message, "previous_response_unavailable", headers)
        message = (
            f"No deployment of '{model.name}' is available now; retry in {wait_ms / 1000:.1f}s."
        )
        raise server_error(503, message, "upstreams_unavailable", headers)


async def _answer(
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
    body = await _read(resp, upstream)
    account.first_byte()
    if resp.status >= 400:
        answer = error_answer(resp.status, body, key, headers)
        account.close_body(resp.status, bytes(answer.body))
        return answer
    account.close_body(resp.status, body)
    return Response(content=body, status_code=resp.status, headers=headers)


async def _read(resp: aiohttp.ClientResponse, upstream: Upstream) -> bytes:
    """The whole body, the connection released; a transport failure as the gateway's error."""
    try:
        return await resp.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise transport_error(upstream, exc) from None
    finally:
        resp.release()


def _body_for(
    payload: dict[str, Any], upstream: Upstream, stream: bool, operation: Operation
) -> tuple[bytes, bool]:
    """The request as this upstream gets it: its own model name and, for a chat or completions
    stream, a request for usage (a Responses stream always ends with it). Also says whether the
    client must not see that usage chunk."""
    body = {**payload, "model": upstream.target}
    asks = operation is Operation.CHAT or operation is Operation.COMPLETIONS
    strip = stream and asks and _ask_for_usage(body, upstream)
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(), strip


def _ask_for_usage(body: dict[str, Any], upstream: Upstream) -> bool:
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        return False  # malformed: let the upstream say so
    if (options or {}).get("include_usage") is True or not upstream.reports_stream_usage:
        return False
    body["stream_options"] = {**(options or {}), "include_usage": True}
    return True


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """`retry-after-ms`, else `retry-after` (seconds or an HTTP date), as the SDKs read them."""
    for name, scale in (("retry-after-ms", 0.001), ("x-ms-retry-after-ms", 0.001)):
        try:
            return max(float(headers[name]) * scale, 0.0)
        except (KeyError, ValueError):
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def relayed_headers(
    upstream: Mapping[str, str], request_id: str, upstream_name: str
) -> dict[str, str]:
    headers = {
        name: value
        for name, value in upstream.items()
        if name.lower() not in _DROPPED and not name.lower().startswith(_OWNED_PREFIXES)
    }
    upstream_request_id = upstream.get("x-request-id")
    if upstream_request_id:
        headers["x-upstream-request-id"] = upstream_request_id
    headers["x-request-id"] = request_id
    headers["x-tollgate-upstream"] = upstream_name
    return headers
