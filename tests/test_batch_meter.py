"""The batch meter on its own: an ended batch is recorded once however many sightings, with the
usage of its answered lines and its batch price; an output it cannot read leaves the batch to a
later sighting; a batch that ends without output is still recorded."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from shared.usage.batches import BatchMeter, MemoryClaims
from shared.usage.counts import Tokens, Units
from shared.usage.record import UsageRecord

ENTRY = {
    "system": "app",
    "upstream": "east",
    "key_id": "k1",
    "model": "assistant",
    "deployment": "east",
    "request_id": "req_1",
    "route": "openai",
    "time": "2026-12-06T01:00:00.000Z",
    "client_ip": "127.0.0.1",
}


def line(status: int, prompt: int, completion: int) -> bytes:
    body = {"usage": {"prompt_tokens": prompt, "completion_tokens": completion}}
    return json.dumps(
        {"custom_id": "x", "response": {"status_code": status, "body": body}}
    ).encode()


class Harness:
    def __init__(self, output: list[bytes], readable: bool = True) -> None:
        self.records: list[UsageRecord] = []
        self.charged: list[tuple[str, str, str, int, float]] = []
        self.output, self.readable = output, readable

        async def charge(system: str, key: str, model: str, tokens: int, cost: float) -> None:
            self.charged.append((system, key, model, tokens, cost))

        async def lookup(upstream: str, batch_id: str) -> dict[str, Any] | None:
            return None

        async def lines(upstream: str, file_id: str) -> AsyncIterator[bytes]:
            if not self.readable:
                raise ConnectionError("output unreadable")
            for item in self.output:
                yield item

        def price(model: str, tokens: Tokens, units: Units, batch: bool) -> float:
            assert batch
            return tokens.prompt * 1.0 + tokens.completion * 2.0

        self.meter = BatchMeter(MemoryClaims(), self, price, charge, lookup, lines, 60)

    def add(self, record: UsageRecord) -> None:
        self.records.append(record)


DONE = {"status": "completed", "output_file_id": "file-out", "created_at": 10, "completed_at": 70}


def test_an_ended_batch_is_recorded_once_with_its_answered_lines() -> None:
    harness = Harness([line(200, 10, 5), line(200, 7, 3), line(500, 99, 99), b"not json"])

    async def scenario() -> list[bool]:
        return [await harness.meter.finish("batch_1", ENTRY, DONE) for _ in range(3)]

    assert asyncio.run(scenario()) == [True, False, False]
    (record,) = harness.records
    assert (record.prompt_tokens, record.completion_tokens, record.batch_requests) == (17, 8, 2)
    assert (record.operation, record.batch_id, record.error_code) == ("batch", "batch_1", "")
    assert record.cost == 17 * 1.0 + 8 * 2.0 and record.total_ms == 60_000
    assert harness.charged == [("app", "k1", "assistant", 25, 33.0)]


def test_an_unreadable_output_leaves_the_batch_to_a_later_sighting() -> None:
    harness = Harness([line(200, 4, 4)], readable=False)

    async def scenario() -> tuple[bool, bool]:
        first = await harness.meter.finish("batch_2", ENTRY, DONE)
        harness.readable = True
        return first, await harness.meter.finish("batch_2", ENTRY, DONE)

    assert asyncio.run(scenario()) == (False, True)
    assert [r.total_tokens for r in harness.records] == [8]


def test_a_cancelled_batch_without_output_is_recorded_with_nothing_charged() -> None:
    harness = Harness([])
    cancelled = {"status": "cancelled", "output_file_id": None}
    assert asyncio.run(harness.meter.finish("batch_3", ENTRY, cancelled))
    (record,) = harness.records
    assert (record.error_code, record.total_tokens, record.cost) == ("batch_cancelled", 0, 0.0)
    assert harness.charged == []
