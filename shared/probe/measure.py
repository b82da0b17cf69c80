"""Timing one chat request, directly to an upstream or through the gateway, as a CSV row: its
total time, its first byte and, streamed, its first content token (first_token)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp

from shared.probe.first_token import FirstContent
from shared.probe.latency_csv import LatencyRow
from shared.routes import Operation
from shared.upstream.upstreams import Upstream

# The seed's benchmark prompt.
PROBE_MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "電動車的普及及如何影響保險行業的風險評估和定價策略?請簡要說明。"},
]


@dataclass(frozen=True)
class Target:
    model: str
    path: str  # "direct" or "gateway"
    url: str
    headers: dict[str, str]
    body_model: str | None  # the "model" field to send, if any
    deployment: str  # for direct targets; the gateway names its own in a header


def direct_target(model: str, upstream: Upstream, key: str) -> Target:
    headers = {"content-type": "application/json", **upstream.auth_headers(key)}
    return Target(
        model, "direct", upstream.url(Operation.CHAT), headers, upstream.target, upstream.name
    )


def gateway_target(model: str, gateway_url: str, key: str) -> Target:
    url = f"{gateway_url}/gateway/chat/completions/{model}"
    headers = {"content-type": "application/json", "api-key": key}
    return Target(model, "gateway", url, headers, None, "")


@dataclass
class Timing:
    """Seconds from sending the request; None until it happened."""

    first_byte: float | None = None
    first_token: float | None = None  # streamed answers only


async def measure(session: aiohttp.ClientSession, target: Target, stream: bool) -> LatencyRow:
    body: dict[str, Any] = {"messages": PROBE_MESSAGES, "stream": stream}
    if target.body_model:
        body["model"] = target.body_model
    if stream:
        body["stream_options"] = {"include_usage": True}
    start = datetime.now()
    t0 = time.perf_counter()
    timing = Timing()
    status, error = 0, ""
    headers: dict[str, str] = {}
    usage: dict[str, int] = {}
    try:
        async with session.post(target.url, json=body, headers=target.headers) as resp:
            status, headers = resp.status, dict(resp.headers)
            answer = await _read(resp, stream, t0, timing)
        usage, error = _outcome(status, answer, stream)
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        error = type(exc).__name__
    total = time.perf_counter() - t0
    end = datetime.now()
    return LatencyRow(
        model=target.model,
        start=start,
        end=end,
        path=target.path,
        deployment=target.deployment or headers.get("x-tollgate-upstream", ""),
        region=headers.get("x-ms-region", ""),
        stream=stream,
        status=status,
        ttfb_ms=(timing.first_byte or total) * 1000,
        total_ms=total * 1000,
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
        error=error,
        ttft_ms=None if timing.first_token is None else timing.first_token * 1000,
    )


async def _read(resp: aiohttp.ClientResponse, stream: bool, t0: float, timing: Timing) -> bytes:
    """The whole answer, noting when its first bytes and (streamed) first content token came."""
    content = FirstContent() if stream and resp.status == 200 else None
    chunks: list[bytes] = []
    async for chunk in resp.content.iter_any():
        elapsed = time.perf_counter() - t0
        if timing.first_byte is None:
            timing.first_byte = elapsed
        if content is not None and not content.seen and content.feed(chunk):
            timing.first_token = elapsed
        chunks.append(chunk)
    return b"".join(chunks)


def _outcome(status: int, body: bytes, stream: bool) -> tuple[dict[str, int], str]:
    """The usage block and an error summary (the error's code only: never message text)."""
    try:
        if stream and status == 200:
            return _stream_usage(body)
        data = json.loads(body)
    except ValueError:
        return {}, "" if status == 200 else f"HTTP {status}"
    if status != 200:
        code = data.get("error", {}).get("code") if isinstance(data, dict) else None
        return {}, f"HTTP {status}" + (f" {code}" if code else "")
    return dict(data.get("usage") or {}), ""


def _stream_usage(body: bytes) -> tuple[dict[str, int], str]:
    usage: dict[str, int] = {}
    done = False
    for line in body.splitlines():
        if not line.startswith(b"data: "):
            continue
        payload = line[6:]
        if payload == b"[DONE]":
            done = True
            continue
        event = json.loads(payload)
        if "error" in event:
            return usage, f"stream error {event['error'].get('code') or ''}".strip()
        usage = event.get("usage") or usage
    return usage, "" if done else "stream ended without [DONE]"
