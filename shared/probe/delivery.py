"""Getting a run's CSV into the results store without ever losing it.

Each upload is retried with backoff; a run that still cannot be uploaded is kept in a local
spool folder and uploaded, before anything else, by the next run.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path

from shared.storage.documents import ResultsStore

log = logging.getLogger("tollgate.probe")
ATTEMPTS = 4
BACKOFF_SECONDS = 1.0  # doubled after each failed attempt: 1 + 2 + 4 s before spooling


@dataclass
class Delivery:
    name: str
    uploaded: bool
    attempts: int
    spooled: Path | None = None
    flushed: list[str] = field(default_factory=list)


async def deliver(
    store: ResultsStore,
    name: str,
    text: str,
    spool: Path,
) -> Delivery:
    attempts, backoff_seconds = ATTEMPTS, BACKOFF_SECONDS
    flushed = await flush_spool(store, spool)
    for attempt in range(1, attempts + 1):
        try:
            await store.put(name, text)
        except Exception as exc:  # any storage failure: retry, then spool
            log.warning(
                "probe upload %s attempt %d/%d failed: %s",
                name,
                attempt,
                attempts,
                type(exc).__name__,
            )
            if attempt < attempts:
                await asyncio.sleep(backoff_seconds * 2 ** (attempt - 1))
            continue
        log.info("probe results uploaded to %s/%s", store.describe(), name)
        return Delivery(name, True, attempt, flushed=flushed)
    path = await asyncio.to_thread(_write_spool, spool, name, text)
    log.error("probe upload %s failed %d times; rows kept in %s", name, attempts, path)
    return Delivery(name, False, attempts, spooled=path, flushed=flushed)


async def flush_spool(store: ResultsStore, spool: Path) -> list[str]:
    """Upload runs left by earlier failures, oldest first; stop at the first failure."""
    flushed: list[str] = []
    for path in await asyncio.to_thread(_spooled, spool):
        name = path.relative_to(spool).as_posix()
        try:
            await store.put(name, await asyncio.to_thread(path.read_text, encoding="utf-8"))
        except Exception as exc:
            log.warning(
                "spooled probe run %s still cannot be uploaded: %s", name, type(exc).__name__
            )
            break
        await asyncio.to_thread(path.unlink)
        flushed.append(name)
    return flushed


def _spooled(spool: Path) -> list[Path]:
    return sorted(spool.rglob("*.csv")) if spool.is_dir() else []


def _write_spool(spool: Path, name: str, text: str) -> Path:
    path = spool / name
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path
