"""Forwarding a request to its model's pool: pick a deployment, fail over, relay the answer."""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import time
from collections.abc import AsyncIterable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from starlette.responses import Response

from shared.auth.secret_cache import CachedSecrets
from shared.errors import GatewayError, server_error
from shared.routes import Operation
from shared.upstream.answers import (
    MISCONFIGURED,
    binary_answer,
    read_whole,
    rejected,
    relayed_answer,
    relayed_headers,
)
from shared.upstream.balancer import Balancer
from shared.upstream.call import call_upstream
from shared.upstream.client import UpstreamClient
from shared.upstream.config import PublicModel
from shared.upstream.scrub import error_answer
from shared.upstream.single import SingleCalls
from shared.upstream.streams import KeepAliveStream
from shared.upstream.upstreams import Upstream
from shared.usage.account import Account
from shared.usage.stream_tap import UsageTap
from shared.usage.telemetry import record_failover, record_upstream_error

log = logging.getLogger("tollgate.relay")


@dataclass(frozen=True)
class FailoverPolicy:
    max_attempts: int
    budget_seconds: float  # no new attempt starts after this long
    default_cooldown_seconds: float  # a 429 without Retry-After
    total_seconds: float  # a whole non-streamed exchange, every attempt included
    keepalive_seconds: float  # a stream waiting this long is committed and kept alive (0: never)


class Dispatcher(SingleCalls):
    """Calls to a model's pool: a deployment picked, failed over; and, inherited, calls to one
    known upstream."""

    def __init__(
        self,
        client: UpstreamClient,
        secrets: CachedSecrets,
        balancer: Balancer,
        policy: FailoverPolicy,
    ):
        super().__init__(client, secrets, policy.total_seconds)
        self.balancer, self.policy = balancer, policy

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
            if resp.status == 429:  # relayed as it came if no other deployment answers
                record_upstream_error(upstream.name, model.name, "429")
                await self.balancer.cool_down(upstream.name, self._cooldown(resp.headers))
                last = await self._failed_answer(resp, upstream, request_id, key)
                continue
            if resp.status >= 500 or resp.status in MISCONFIGURED:
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
            if model.operation is Operation.SPEECH and resp.status == 200:
                return binary_answer(resp, upstream, request_id, account, key)
            return await relayed_answer(resp, upstream, request_id, tap, account, key)
        return self._exhausted(model, last, account)

    async def upload(
        self,
        model: PublicModel,
        content_type: str,
        body_for: Callable[[Upstream], AsyncIterable[bytes]],
        request_id: str,
        account: Account,
    ) -> Response:
        """A multipart call (audio, an image edit): one deployment, since the body streams
        through once; a 429 or 5xx is relayed for the client to retry (and cools or counts
        against that deployment, as for any call)."""
        member = await self.balancer.pick(model.pool, set())
        if member is None:
            return self._exhausted(model, None, account)
        upstream = member.upstream
        account.deployment, account.attempts = upstream.name, 1
        try:
            async with asyncio.timeout(self.policy.total_seconds):
                resp, key = await call_upstream(
                    self.client,
                    self.secrets,
                    upstream,
                    model.operation,
                    body_for(upstream),
                    request_id,
                    content_type=content_type,
                )
                await self._judge(resp, upstream, model)
                if resp.status not in MISCONFIGURED:
                    return await relayed_answer(resp, upstream, request_id, None, account, key)
        except TimeoutError:
            await self.balancer.failed(upstream.name)
            message = "The upstream deployment did not answer in time."
            raise server_error(504, message, "upstream_timeout") from None
        except GatewayError as exc:
            if exc.type == "upstream_error":  # not the gateway's own (a body over the limit)
                await self.balancer.failed(upstream.name)
            raise
        raise rejected(resp, upstream)

    async def _judge(
        self, resp: aiohttp.ClientResponse, upstream: Upstream, model: PublicModel
    ) -> None:
        """Tell the balancer how a single-attempt call went."""
        if resp.status == 429:
            record_upstream_error(upstream.name, model.name, "429")
            await self.balancer.cool_down(upstream.name, self._cooldown(resp.headers))
        elif resp.status >= 500 or resp.status in MISCONFIGURED:
            record_upstream_error(
                upstream.name, model.name, "5xx" if resp.status >= 500 else "rejected"
            )
            await self.balancer.failed(upstream.name)
        else:
            await self.balancer.succeeded(upstream.name)

    def _cooldown(self, headers: Mapping[str, str]) -> float:
        return retry_after_seconds(headers) or self.policy.default_cooldown_seconds

    async def _failed_answer(
        self, resp: aiohttp.ClientResponse, upstream: Upstream, request_id: str, key: str
    ) -> Response | GatewayError:
        if resp.status in MISCONFIGURED:
            return rejected(resp, upstream)
        try:
            body = await read_whole(resp, upstream)
        except GatewayError as exc:
            return exc
        headers = relayed_headers(resp.headers, request_id, upstream.name)
        return error_answer(resp.status, body, key, headers)

    def _exhausted(
        self, model: PublicModel, last: Response | GatewayError | None, account: Account
    ) -> Response:
        """Every attempt failed: the last upstream error (a 429 as it came); with none, 429
        when every deployment of the pool is cooling down from the upstream's 429s, else 503
        (breakers open)."""
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
        if self.balancer.rate_limited(model.pool):
            message = (
                f"Every deployment of '{model.name}' is rate limited by its upstream; retry in "
                f"{wait_ms / 1000:.1f}s."
            )
            raise GatewayError(
                429, message, type="requests", code="upstream_rate_limited", headers=headers
            )
        message = (
            f"No deployment of '{model.name}' is available now; retry in {wait_ms / 1000:.1f}s."
        )
        raise server_error(503, message, "upstreams_unavailable", headers)


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
