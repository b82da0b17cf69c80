"""The response cache on the request path: whether a model call may use it, the kept answer
replayed on a hit (admitted against the request limits only, as it uses no tokens or money),
and the answer kept after a miss."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from shared.cache.assemble import assembled, storable
from shared.cache.key import request_key
from shared.cache.replay import replayed
from shared.cache.store import AnswerStore, Kept
from shared.gateway import Gateway
from shared.limits.headers import rate_limit_headers
from shared.registry.systems import Caller
from shared.routes import Operation
from shared.upstream.config import PublicModel
from shared.usage.account import Account
from shared.usage.counts import flat_counts

log = logging.getLogger("tollgate.cache")

# Answers that depend only on the request. Responses are left out: they create stored state
# upstream (ids that later calls chain from), which a replay cannot.
CACHED = frozenset({Operation.CHAT, Operation.COMPLETIONS, Operation.EMBEDDINGS})


@dataclass(frozen=True)
class CacheUse:
    state: str  # hit, miss, refresh (no-cache: not looked up, kept), bypass (no-store), or ""
    kept: Kept | None = None


NOT_CACHED = CacheUse("")


async def look_up(
    gateway: Gateway,
    caller: Caller,
    model: PublicModel,
    body: dict[str, Any],
    headers: Mapping[str, str],
    account: Account,
) -> CacheUse:
    """The kept answer for this (redacted) request, if the system opted in and has one; on a
    miss, the account is told to keep its answer."""
    policy, operation = caller.system.cache, model.operation
    if policy is None or operation not in CACHED or not policy.covers(model.name):
        return NOT_CACHED
    if operation is Operation.EMBEDDINGS and account.stream:
        return NOT_CACHED
    directives = _directives(headers.get("cache-control", ""))
    if "no-store" in directives:
        account.cache = "bypass"
        return CacheUse("bypass")
    key = request_key(policy.scope, operation.value, model.name, body)
    state = "refresh" if "no-cache" in directives else "miss"
    if state == "miss":
        kept = await gateway.answers.get(key)
        if kept is not None:
            return CacheUse("hit", kept)
    account.cache = state
    account.keep = keeper(gateway.answers, key, policy.ttl_seconds, operation)
    return CacheUse(state)


async def answer_hit(
    gateway: Gateway,
    caller: Caller,
    model: PublicModel,
    body: dict[str, Any],
    account: Account,
    kept: Kept,
) -> Response:
    """The kept answer, whole or as a stream, after the request limits admit it."""
    scopes = caller.scopes(model.name)
    reservation = await gateway.limiter.admit(caller.system.id, scopes, 0, 0, requests_only=True)
    account.reserved(gateway.limiter, reservation)
    headers = {
        "x-request-id": account.request_id,
        "x-tollgate-cache": "hit",
        "age": str(kept.age_seconds),
        **rate_limit_headers(reservation),
    }
    usage = _usage_of(kept.answer)
    if not account.stream:
        account.close_hit(usage, kept.answer)
        headers.update(account.cost_header())
        return Response(kept.answer, media_type="application/json", headers=headers)
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    stream = replayed(model.operation, kept.answer, include_usage)
    account.close_hit(usage, stream)
    headers["cache-control"] = "no-cache"
    return Response(stream + account.hit_cost(), media_type="text/event-stream", headers=headers)


def keeper(
    answers: AnswerStore, key: str, ttl_seconds: int, operation: Operation
) -> Callable[[bytes, dict[str, int] | None], None]:
    """What the account calls with a 200 answer (a stream's delivered bytes and its usage)."""

    def keep(body: bytes, usage: dict[str, int] | None) -> None:
        if len(body) > 2 * answers.max_entry_bytes:  # a stream's events are about twice it
            return
        try:
            if usage is None:
                answer = body if storable(operation, body) else None
            else:
                answer = assembled(operation, body, usage)
        except Exception as exc:  # never let keeping an answer fail the request's account
            log.error("response cache: answer not kept (%s)", type(exc).__name__)
            return
        if answer is not None:
            answers.put_soon(key, answer, ttl_seconds)

    return keep


def mark(response: Response, use: CacheUse) -> None:
    if use.state:
        response.headers["x-tollgate-cache"] = use.state


def _directives(value: str) -> set[str]:
    return {part.strip().lower().split("=", 1)[0] for part in value.split(",") if part.strip()}


def _usage_of(answer: bytes) -> dict[str, int]:
    try:
        usage = json.loads(answer).get("usage")
    except (ValueError, AttributeError):
        return {}
    return flat_counts(usage) if isinstance(usage, dict) else {}
