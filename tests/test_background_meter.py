"""The background meter (shared/usage/background.py) on its own: each held response is recorded
and settled exactly once, on its usage when its end is seen, else with its reservation charged."""

from __future__ import annotations

import asyncio
from typing import Any

from shared.limits.plan import Check, Plan
from shared.usage.background import UNSETTLED, BackgroundMeter, MemoryPending, Pending
from shared.usage.counts import Tokens, Units
from shared.usage.record import UsageRecord

PLAN = Plan(
    "sys",
    (
        Check("tpm", "tg:{sys}:s:tpm", 1000, 60_000, "tokens"),
        Check("quota", "tg:{sys}:s:day:20261203", 50_000, 3_600_000, "day"),
    ),
)
USAGE = {
    "input_tokens": 30,
    "input_tokens_details": {"cached_tokens": 10},
    "output_tokens": 12,
    "output_tokens_details": {"reasoning_tokens": 4},
    "total_tokens": 42,
}


def pending(estimate: int = 100) -> Pending:
    record = UsageRecord(
        time="2026-12-03T21:00:00.000Z",
        request_id="req_1",
        system="sys",
        key_id="k",
        route="openai",
        operation="responses",
        model="gpt-4o",
        deployment="dep",
        status=200,
        error_code="",
        stream=False,
        prompt_tokens=0,
        completion_tokens=0,
        total_tokens=0,
        reserved_tokens=estimate,
        settled_tokens=0,
        cost=0.0,
        ttfb_ms=1.0,
        total_ms=2.0,
        attempts=1,
        client_ip="127.0.0.1",
        client_disconnected=False,
        response_id="resp_1",
    )
    return Pending(record, PLAN, "rid1", estimate, True)


class Harness:
    def __init__(self, answers: list[dict[str, Any] | None], horizon: float = 5.0) -> None:
        self.records: list[UsageRecord] = []
        self.settled: list[tuple[str, int, bool]] = []
        self.looked = 0
        self._answers = answers

        async def settle(plan: Plan, rid: str, delta: int, shared: bool, cost: int) -> None:
            assert plan == PLAN
            self.settled.append((rid, delta, shared))

        async def lookup(deployment: str, response_id: str) -> dict[str, Any] | None:
            assert (deployment, response_id) == ("dep", "resp_1")
            self.looked += 1
            return self._answers.pop(0) if self._answers else {"status": "in_progress"}

        def price(model: str, tokens: Tokens, units: Units, batch: bool) -> float:
            return tokens.prompt * 0.001 + tokens.completion * 0.002

        self.meter = BackgroundMeter(
            MemoryPending(), self, price, settle, lookup, horizon, 0.01, 0.02
        )

    def add(self, record: UsageRecord) -> None:
        self.records.append(record)


async def until(check: Any, seconds: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not check():
        assert loop.time() < deadline
        await asyncio.sleep(0.01)


def test_a_pending_entry_survives_its_json() -> None:
    entry = pending()
    again = Pending.from_json(entry.to_json())
    assert again == entry and again.plan == PLAN


async def test_the_watch_settles_on_the_usage_once_the_response_ends() -> None:
    harness = Harness([None, {"status": "queued"}, {"status": "completed", "usage": USAGE}])
    harness.meter.hold_soon("resp_1", pending())
    await until(lambda: harness.records)
    (record,) = harness.records
    assert (record.prompt_tokens, record.completion_tokens, record.total_tokens) == (30, 12, 42)
    assert (record.cached_tokens, record.reasoning_tokens) == (10, 4)
    assert record.settled_tokens == 42 and record.error_code == ""
    assert record.cost == 30 * 0.001 + 12 * 0.002
    assert harness.settled == [("rid1", 42 - 100, True)] and harness.looked == 3


async def test_an_end_seen_elsewhere_settles_once_and_stops_the_watch() -> None:
    harness = Harness([])
    harness.meter.hold_soon("resp_1", pending())
    await asyncio.sleep(0.05)
    harness.meter.seen_soon("resp_1", {"status": "in_progress"})  # not an end: nothing
    harness.meter.seen_soon("resp_1", {"status": "cancelled", "usage": {"input_tokens": 30}})
    harness.meter.seen_soon("resp_1", {"status": "cancelled", "usage": {"input_tokens": 30}})
    await until(lambda: harness.records)
    await harness.meter.aclose()
    (record,) = harness.records
    assert record.error_code == "response_cancelled" and record.total_tokens == 30
    assert harness.settled == [("rid1", 30 - 100, True)]


async def test_a_response_gone_or_never_seen_to_end_is_charged_its_reservation() -> None:
    gone = Harness([{}])  # the upstream no longer has it
    gone.meter.hold_soon("resp_1", pending())
    await until(lambda: gone.records)
    never = Harness([], horizon=0.1)  # still running when the watch gives up
    never.meter.hold_soon("resp_1", pending())
    await until(lambda: never.records)
    for harness in (gone, never):
        (record,) = harness.records
        assert record.error_code == UNSETTLED and record.total_tokens == 0
        assert record.settled_tokens == 100 and harness.settled == [("rid1", 0, True)]


async def test_what_is_still_watched_at_shutdown_is_recorded() -> None:
    harness = Harness([])
    harness.meter.hold_soon("resp_1", pending())
    await asyncio.sleep(0.05)
    await harness.meter.aclose()
    (record,) = harness.records
    assert record.error_code == UNSETTLED and record.settled_tokens == 100
