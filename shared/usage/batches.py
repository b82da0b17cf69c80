"""Batches, metered when they end.

A batch runs upstream for up to a day after the call that created it, so its usage is known
only when the gateway sees it end: in the answer to its creator's retrieve, cancel or list, or
by polling the upstream itself (backing off, for at most the watch horizon). Then its output
file is read line by line, the usage of its answered lines summed, and one usage record
written for it, priced at the model's batch price and charged to the system's daily and
monthly token quotas. Each batch is metered once, whichever instance sees its end first.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from shared.usage.counts import NO_UNITS, Price, Tokens, flat_counts, tokens_of
from shared.usage.record import RecordSink, UsageRecord, token_fields
from shared.usage.telemetry import record_request

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("tollgate.batches")
ENDED = frozenset({"completed", "failed", "expired", "cancelled"})
_RUNNING = frozenset({"validating", "in_progress", "finalizing", "cancelling"})

# (upstream name, batch id) -> the batch object; None when it could not say this time
Lookup = Callable[[str, str], Awaitable[dict[str, Any] | None]]
# (upstream name, file id) -> the file's lines
Lines = Callable[[str, str], AsyncIterator[bytes]]
# (system, key id, public model, tokens, cost): charged to the quotas and budgets of that call
Charge = Callable[[str, str, str, int, float], Awaitable[None]]


class Claims(Protocol):
    async def claim(self, batch_id: str) -> bool:
        """True for the first caller only."""
        ...

    async def release(self, batch_id: str) -> None: ...


class MemoryClaims:
    def __init__(self) -> None:
        self._claimed: set[str] = set()

    async def claim(self, batch_id: str) -> bool:
        if batch_id in self._claimed:
            return False
        self._claimed.add(batch_id)
        return True

    async def release(self, batch_id: str) -> None:
        self._claimed.discard(batch_id)


class RedisClaims:
    """`tg:batchdone:{id}`, set only if absent, kept past any retrieval of the batch."""

    def __init__(self, client: Redis) -> None:
        self._client = client

    async def claim(self, batch_id: str) -> bool:
        return bool(await self._client.set(_key(batch_id), "1", nx=True, ex=60 * 86_400))

    async def release(self, batch_id: str) -> None:
        await self._client.delete(_key(batch_id))


def _key(batch_id: str) -> str:
    return f"tg:batchdone:{batch_id}"


class BatchMeter:
    def __init__(
        self,
        claims: Claims,
        sink: RecordSink,
        price: Price,
        charge: Charge,
        lookup: Lookup,
        lines: Lines,
        horizon_seconds: float,
        first_check_seconds: float = 10.0,
        longest_wait_seconds: float = 600.0,
    ) -> None:
        self._claims, self._sink, self._price, self._charge = claims, sink, price, charge
        self._lookup, self._lines = lookup, lines
        self._horizon = horizon_seconds
        self._first, self._longest = first_check_seconds, longest_wait_seconds
        self._watching: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    def watch_soon(self, batch_id: str, entry: dict[str, Any]) -> None:
        """Poll a new batch until it ends (or the horizon passes)."""
        task = asyncio.get_running_loop().create_task(self._watch(batch_id, entry))
        self._watching[batch_id] = task
        task.add_done_callback(lambda _: self._watching.pop(batch_id, None))

    def seen_soon(self, batch_id: str, entry: dict[str, Any], answer: dict[str, Any]) -> None:
        """The batch as the upstream answered it to its creator: meter it if it has ended."""
        if answer.get("status") in ENDED:
            self._spawn(self._finish_seen(batch_id, entry, answer))

    async def _finish_seen(
        self, batch_id: str, entry: dict[str, Any], answer: dict[str, Any]
    ) -> None:
        if await self.finish(batch_id, entry, answer):
            watch = self._watching.get(batch_id)
            if watch is not None:
                watch.cancel()

    async def finish(self, batch_id: str, entry: dict[str, Any], answer: dict[str, Any]) -> bool:
        """Record an ended batch and charge its tokens, once across instances."""
        try:
            if not await self._claims.claim(batch_id):
                return False
        except Exception as exc:  # Redis down: a later sighting meters it
            log.error("could not claim a batch for metering: %s", type(exc).__name__)
            return False
        try:
            tokens, answered = await self._usage(entry["upstream"], answer)
        except Exception as exc:  # the output could not be read: leave it to a later sighting
            log.error("could not read batch %s's output: %s", batch_id, type(exc).__name__)
            await self._claims.release(batch_id)
            return False
        record = self._record(batch_id, entry, answer, tokens, answered)
        self._write(record)
        if tokens.total:
            try:
                charged = (entry["system"], entry["key_id"], entry["model"])
                await self._charge(*charged, tokens.total, record.cost)
            except Exception as exc:  # the record stands; the quota misses these tokens
                log.error("could not charge batch %s's tokens: %s", batch_id, type(exc).__name__)
        return True

    async def _usage(self, upstream: str, answer: dict[str, Any]) -> tuple[Tokens, int]:
        """The summed usage of the output file's answered lines, and how many there were."""
        file_id = answer.get("output_file_id")
        if not isinstance(file_id, str) or not file_id:
            return Tokens(), 0
        prompt = completion = cached = reasoning = answered = 0
        async for line in self._lines(upstream, file_id):
            usage = _line_usage(line)
            if usage is None:
                continue
            tokens = tokens_of(flat_counts(usage))
            answered += 1
            prompt, completion = prompt + tokens.prompt, completion + tokens.completion
            cached, reasoning = cached + tokens.cached, reasoning + tokens.reasoning
        return Tokens(prompt, completion, cached, reasoning), answered

    def _record(
        self,
        batch_id: str,
        entry: dict[str, Any],
        answer: dict[str, Any],
        tokens: Tokens,
        answered: int,
    ) -> UsageRecord:
        status = answer.get("status")
        return UsageRecord(
            time=entry["time"],
            request_id=entry["request_id"],
            system=entry["system"],
            key_id=entry["key_id"],
            route=entry["route"],
            operation="batch",
            model=entry["model"],
            deployment=entry["deployment"],
            status=200,
            error_code="" if status == "completed" else f"batch_{status}",
            stream=False,
            **token_fields(tokens),
            reserved_tokens=0,
            settled_tokens=tokens.total,
            cost=round(self._price(entry["model"], tokens, NO_UNITS, True), 8),
            ttfb_ms=0.0,
            total_ms=_lasted_ms(answer),
            attempts=1,
            client_ip=entry["client_ip"],
            client_disconnected=False,
            batch_id=batch_id,
            batch_requests=answered,
        )

    def _write(self, record: UsageRecord) -> None:
        self._sink.add(record)
        record_request(record)

    async def _watch(self, batch_id: str, entry: dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        deadline, wait = loop.time() + self._horizon, self._first
        while loop.time() + wait < deadline:
            await asyncio.sleep(wait * random.uniform(0.8, 1.2))
            wait = min(wait * 2, self._longest)
            answer = await self._lookup(entry["upstream"], batch_id)
            if answer is None or answer.get("status") in _RUNNING:
                continue
            if answer.get("status") in ENDED:
                await self.finish(batch_id, entry, answer)
            return  # ended, or gone upstream

    async def aclose(self) -> None:
        """At shutdown: stop watching (the batches run on; their creators' next look, or
        another instance, meters them)."""
        for task in list(self._watching.values()):
            task.cancel()
        pending = [*self._watching.values(), *self._tasks]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    def _spawn(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _line_usage(line: bytes) -> dict[str, Any] | None:
    """An output line's usage, when its request was answered (status 200) with one."""
    try:
        item = json.loads(line)
        response = item.get("response") or {}
        usage = (
            (response.get("body") or {}).get("usage")
            if response.get("status_code") == 200
            else None
        )
    except (ValueError, AttributeError):
        return None
    return usage if isinstance(usage, dict) else None


def _lasted_ms(answer: dict[str, Any]) -> float:
    start = answer.get("created_at")
    end = next(
        (
            answer.get(f)
            for f in ("completed_at", "failed_at", "expired_at", "cancelled_at")
            if answer.get(f)
        ),
        None,
    )
    if not isinstance(start, int | float) or not isinstance(end, int | float):
        return 0.0
    return max(float(end - start) * 1000, 0.0)
