"""`GET /readyz`: whether this instance can serve model calls now. Ready only when the gateway's
configuration is valid, the registry can be read, Redis answers (when configured) and an
upstream key of at least one deployment of every model can be read. The body names each check
and its state, never a secret, URL or key name. `/healthz` stays the bare liveness answer."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request
from starlette.responses import Response

from shared.errors import GatewayError
from shared.gateway import Gateway, get_gateway

log = logging.getLogger("tollgate.readiness")
T = TypeVar("T")
CHECK_SECONDS = 2.0  # each check; a load balancer's probe must not hang


async def readiness(request: Request) -> Response:
    try:
        gateway = get_gateway()
    except GatewayError:
        return _answer({"configuration": "invalid"})
    registry, redis, keys = await asyncio.gather(
        _bounded(_registry(gateway)), _bounded(_redis(gateway)), _bounded(_keys(gateway))
    )
    upstream = keys if isinstance(keys, dict) else {"upstream_keys": keys}
    return _answer({"configuration": "ok", "registry": registry, "redis": redis, **upstream})


def _answer(checks: dict[str, str]) -> Response:
    ready = all(state in ("ok", "not_configured") for state in checks.values())
    body = {"status": "ready" if ready else "not_ready", "checks": checks}
    return Response(
        json.dumps(body),
        status_code=200 if ready else 503,
        media_type="application/json",
        headers={"cache-control": "no-store"},
    )


async def _bounded(check: Awaitable[T]) -> T | str:
    try:
        async with asyncio.timeout(CHECK_SECONDS):
            return await check
    except TimeoutError:
        return "timeout"


async def _registry(gateway: Gateway) -> str:
    try:
        return "ok" if await gateway.registry.check() else "unreadable"
    except GatewayError:
        return "unreadable"


async def _redis(gateway: Gateway) -> str:
    if gateway.redis is None:
        return "not_configured"
    try:
        await gateway.redis.ping()
    except Exception as exc:  # any failure is the state; its text could name the host
        log.warning("readiness: Redis did not answer (%s)", type(exc).__name__)
        return "unreachable"
    return "ok"


async def _keys(gateway: Gateway) -> dict[str, str]:
    """`upstream_keys`: ok when every model has a deployment whose key (or token) can be read;
    else how many models have none."""
    names = {m.upstream.key_secret for model in gateway.config.models.values() for m in model.pool}
    results = await asyncio.gather(*(gateway.secrets.get(n) for n in names), return_exceptions=True)
    readable = {n for n, r in zip(names, results, strict=True) if isinstance(r, str) and r}
    stranded = [
        name
        for name, model in gateway.config.models.items()
        if not any(m.upstream.key_secret in readable for m in model.pool)
    ]
    if stranded:
        log.warning("readiness: no readable upstream key for %d models", len(stranded))
        total = len(gateway.config.models)
        return {"upstream_keys": f"unreadable for {len(stranded)} of {total} models"}
    return {"upstream_keys": "ok"}
