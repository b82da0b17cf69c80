"""Background responses (`background: true`), metered when they end.

Their create call answers at once, before anything is generated, so what they used is known
only later. The call's reservation is kept (its concurrency lease ends with the call) and its
usage record held, in Redis when configured so that every instance can finish it, until the
gateway sees the response in a terminal state: in the answer to the client's own retrieve or
cancel, at the end of a resumed stream, or by polling the upstream itself (backing off, for at
most the watch horizon). A response still unfinished then, or when its instance stops, is
recorded with its whole reservation charged: the worst case.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import astuple, dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from shared.limits.plan import Check, Plan, cost_units
from shared.usage.counts import NO_UNITS, Price, flat_counts, tokens_of
from shared.usage.record import RecordSink, UsageRecord, token_fields
from shared.usage.telemetry import record_request

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("tollgate.background")
TERMINAL = frozenset({"completed", "incomplete", "failed", "cancelled"})
UNFINISHED = frozenset({"queued", "in_progress"})
UNSETTLED = "background_unsettled"  # the record's error code when the end was never seen


@dataclass
class Pending:
    """A background response's create call: its record, tokens to come, and its reservation."""

    record: UsageRecord
    plan: Plan | None
    rid: str
    estimate: int
    shared: bool  # reserved in the shared store (else in this instance's, while it was down)
    cost: int = 0  # the worst case reserved against budgets, in cost units

    def to_json(self) -> str:
        plan = self.plan
        checks = [] if plan is None else [list(astuple(check)) for check in plan.checks]
        return json.dumps(
            {
                "record": self.record.to_json(),
                "plan": None if plan is None else [plan.system_id, checks],
                "rid": self.rid,
                "estimate": self.estimate,
                "shared": self.shared,
                "cost": self.cost,
            }
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Pending:
        data = json.loads(text)
        plan = data["plan"]
        return cls(
            UsageRecord.from_json(data["record"]),
            None if plan is None else Plan(plan[0], tuple(Check(*c) for c in plan[1])),
            data["rid"],
            data["estimate"],
            data["shared"],
            data.get("cost", 0),
        )


class PendingStore(Protocol):
    async def hold(self, response_id: str, pending: Pending, seconds: float) -> None: ...

    async def take(self, response_id: str) -> Pending | None:
        """The pending entry, removed: only one taker ever gets it."""
        ...


class MemoryPending:
    def __init__(self) -> None:
        self._entries: dict[str, str] = {}

    async def hold(self, response_id: str, pending: Pending, seconds: float) -> None:
        self._entries[response_id] = pending.to_json()

    async def take(self, response_id: str) -> Pending | None:
        text = self._entries.pop(response_id, None)
        return None if text is None else Pending.from_json(text)


class RedisPending:
    """`tg:bg:{id}`, expiring a day after the watch horizon; taken with GET and DEL in one
    transaction, so two instances seeing the end at once settle it once."""

    def __init__(self, client: Redis) -> None:
        self._client = client

    async def hold(self, response_id: str, pending: Pending, seconds: float) -> None:
        await self._client.set(_key(response_id), pending.to_json(), ex=int(seconds) + 86_400)

    async def take(self, response_id: str) -> Pending | None:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.get(_key(response_id))
            pipe.delete(_key(response_id))
            value, _ = await pipe.execute()
        return None if value is None else Pending.from_json(value)


def _key(response_id: str) -> str:
    return f"tg:bg:{response_id}"


# (deployment, response id) -> the upstream's response object; {} when it has none (deleted);
# None when it could not say this time.
Lookup = Callable[[str, str], Awaitable[dict[str, Any] | None]]
# (plan, rid, tokens delta, shared, cost delta in cost units)
Settle = Callable[[Plan, str, int, bool, int], Awaitable[None]]


class BackgroundMeter:
    def __init__(
        self,
        store: PendingStore,
        sink: RecordSink,
        price: Price,
        settle: Settle,
        check: Lookup,
        horizon_seconds: float,
        first_check_seconds: float = 2.0,
        longest_wait_seconds: float = 60.0,
    ) -> None:
        self._store, self._sink, self._price, self._settle = store, sink, price, settle
        self._check = check
        self._horizon = horizon_seconds
        self._first, self._longest = first_check_seconds, longest_wait_seconds
        self._watching: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    def hold_soon(self, response_id: str, pending: Pending) -> None:
        """Keep the record and reservation until the response ends, and watch for its end."""
        task = asyncio.get_running_loop().create_task(self._hold_and_watch(response_id, pending))
        self._watching[response_id] = task
        task.add_done_callback(lambda _: self._watching.pop(response_id, None))

    def seen_soon(self, response_id: str, answer: dict[str, Any]) -> None:
        """The response as an upstream answered it to anyone: finish it if it has ended."""
        if answer.get("status") in TERMINAL:
            self._spawn(self._finish_seen(response_id, answer))

    async def _finish_seen(self, response_id: str, answer: dict[str, Any]) -> None:
        if await self.finish(response_id, answer):
            watch = self._watching.get(response_id)
            if watch is not None:
                watch.cancel()

    async def finish(self, response_id: str, answer: dict[str, Any] | None) -> bool:
        """Write the record and settle the reservation, once; None: the end was never seen."""
        try:
            pending = await self._store.take(response_id)
        except Exception as exc:  # Redis down: the entry stays, a later sighting finishes it
            log.error("could not take a background response's record: %s", type(exc).__name__)
            return False
        if pending is None:
            return False
        record = self._settled_record(pending, answer)
        if pending.plan is not None:
            # No usage seen: the cost reserved stays charged, as its tokens do.
            used = isinstance((answer or {}).get("usage"), dict)
            cost_delta = cost_units(record.cost) - pending.cost if used else 0
            await self._settle(
                pending.plan,
                pending.rid,
                record.settled_tokens - pending.estimate,
                pending.shared,
                cost_delta,
            )
        self._write(record)
        return True

    def _write(self, record: UsageRecord) -> None:
        self._sink.add(record)
        record_request(record)

    async def aclose(self) -> None:
        """At shutdown: what this instance still watches is recorded as unsettled."""
        watching = dict(self._watching)
        for task in watching.values():
            task.cancel()
        await asyncio.gather(*watching.values(), return_exceptions=True)
        for response_id in watching:
            await self.finish(response_id, None)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _settled_record(self, pending: Pending, answer: dict[str, Any] | None) -> UsageRecord:
        usage = (answer or {}).get("usage")
        record = pending.record
        if not isinstance(usage, dict):  # ended without usage, or never seen to end
            code = UNSETTLED if answer is None else f"response_{answer.get('status')}"
            return replace(
                record, error_code=code, settled_tokens=pending.estimate if pending.plan else 0
            )
        tokens = tokens_of(flat_counts(usage))
        status = answer.get("status") if answer else None
        return replace(
            record,
            error_code="" if status in ("completed", "incomplete") else f"response_{status}",
            **token_fields(tokens),
            settled_tokens=tokens.total if pending.plan else 0,
            cost=round(self._price(record.model, tokens, NO_UNITS, False), 8),
        )

    async def _hold_and_watch(self, response_id: str, pending: Pending) -> None:
        try:
            await self._store.hold(response_id, pending, self._horizon)
        except Exception as exc:  # cannot be shared: finish it here, charged in full
            log.error("could not hold a background response's record: %s", type(exc).__name__)
            self._write(self._settled_record(pending, None))
            return
        deployment = pending.record.deployment
        loop = asyncio.get_running_loop()
        deadline, wait = loop.time() + self._horizon, self._first
        while loop.time() + wait < deadline:
            await asyncio.sleep(wait * random.uniform(0.8, 1.2))
            wait = min(wait * 2, self._longest)
            answer = await self._check(deployment, response_id)
            if answer is None or answer.get("status") in UNFINISHED:
                continue  # None: no answer this time (the upstream failed or was slow)
            # Ended, or no longer there (deleted, or refused): finish it with what is known.
            await self.finish(response_id, answer if answer.get("status") in TERMINAL else None)
            return
        await self.finish(response_id, None)

    def _spawn(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
