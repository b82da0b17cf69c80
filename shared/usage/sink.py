"""Usage records batched off the request path: buffered in memory, written every few seconds,
kept and retried when a write fails, and flushed when the process stops."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import secrets
import socket
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from shared.storage.append import RecordWriter

log = logging.getLogger("tollgate.usage")
MAX_BACKOFF_SECONDS = 60.0


def instance_id() -> str:
    """Unique per process: one writer per blob, so appends never race."""
    host = (os.environ.get("WEBSITE_INSTANCE_ID") or socket.gethostname())[:16]
    return f"{host}-{os.getpid()}-{secrets.token_hex(2)}"


class Line(Protocol):
    """A record the sink writes: one JSON line, filed by the hour it started."""

    @property
    def time(self) -> str: ...

    def to_json(self) -> str: ...


def hour_blob(record: Line, instance: str) -> str:
    return f"{_hour_folder(record.time[:13])}/{instance}.jsonl"


@functools.lru_cache(maxsize=32)
def _hour_folder(hour: str) -> str:
    """`2026-11-25T13` -> `2026/11/25/13` (parsed, so a malformed time fails loudly)."""
    return f"{datetime.fromisoformat(hour + ':00:00+00:00'):%Y/%m/%d/%H}"


class UsageSink:
    def __init__(
        self,
        writer: RecordWriter,
        flush_seconds: float,
        batch: int = 500,
        blob_of: Callable[[Line, str], str] = hour_blob,
        kind: str = "usage",
    ):
        self._writer = writer
        self._kind = kind
        self._every = flush_seconds
        self._batch = batch
        self._instance = instance_id()
        # (blob, JSON line): serialised as each request ends, so no flush stalls the loop.
        self._pending: deque[tuple[str, bytes]] = deque()
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._failures = 0
        self._blob_of = blob_of  # (record, instance) -> its file

    def add(self, record: Line) -> None:
        line = (record.to_json() + "\n").encode()
        self._pending.append((self._blob_of(record, self._instance), line))
        if self._task is None or self._task.done():
            # Started on first use: the Functions host offers no start-up hook.
            self._task = asyncio.get_running_loop().create_task(self._run())
        if len(self._pending) >= self._batch:
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def flush(self) -> bool:
        """Write what is pending; on failure keep what was not written (in order) for later."""
        async with self._lock:
            batch = list(self._pending)
            by_blob: dict[str, list[bytes]] = {}
            for name, line in batch:
                by_blob.setdefault(name, []).append(line)
            done: set[str] = set()
            try:
                for name, lines in by_blob.items():
                    await self._writer.append(name, b"".join(lines))
                    done.add(name)
            except Exception as exc:  # storage down: keep everything not yet written
                self._failures += 1
                kept = sum(len(lines) for name, lines in by_blob.items() if name not in done)
                log.error(
                    "%s write to %s failed (%s); %d records kept",
                    self._kind,
                    self._writer.describe(),
                    type(exc).__name__,
                    kept,
                )
                return False
            finally:
                self._drop_written(batch, done)
            self._failures = 0
            return True

    def _drop_written(self, batch: list[tuple[str, bytes]], blobs: set[str]) -> None:
        done = {id(item) for item in batch if item[0] in blobs}
        self._pending = deque(item for item in self._pending if id(item) not in done)

    async def aclose(self, deadline_seconds: float = 10.0) -> None:
        """At shutdown: stop the timer and flush, retrying until the deadline."""
        if self._task is not None:
            self._task.cancel()
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline_seconds
        for _ in range(int(deadline_seconds / 0.5) + 1):
            if await self.flush() or loop.time() >= end:
                break
            await asyncio.sleep(0.5)
        if self._pending:
            log.error(
                "%s: %d records could not be written before shutdown",
                self._kind,
                len(self._pending),
            )
        await self._writer.aclose()

    async def _run(self) -> None:
        while True:
            delay = min(self._every * 2**self._failures, MAX_BACKOFF_SECONDS)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            self._wake.clear()
            await self.flush()
