"""The scheduled latency probe: each model, directly and through the gateway, alternating."""

from __future__ import annotations

import asyncio
import logging
import secrets as random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from shared.auth.secrets import (
    SecretNotFound,
    SecretProvider,
    SecretProviderError,
)
from shared.auth.upstream_credentials import secret_provider_from
from shared.probe.delivery import Delivery, deliver
from shared.probe.failures import failure_summary
from shared.probe.latency_csv import LatencyRow, to_csv
from shared.probe.measure import Target, direct_target, gateway_target, measure
from shared.routes import Operation
from shared.settings import ProbeSettings, Settings
from shared.storage.documents import results_store, run_blob_name
from shared.upstream.config import GatewayConfig, load_config

log = logging.getLogger("tollgate.probe")
Job = tuple[Target, bool]  # a target, and whether to stream


@dataclass
class ProbeRun:
    run_id: str
    rows: list[LatencyRow]
    delivery: Delivery


async def targets(
    config: GatewayConfig,
    models: list[str],
    paths: list[str],
    gateway_url: str,
    secrets: SecretProvider,
    gateway_key_secret: str,
) -> list[list[Target]]:
    """For each model, the targets to time (direct and/or gateway)."""
    gateway_key = None
    if "gateway" in paths:
        gateway_key = await secrets.get(gateway_key_secret)
    plan: list[list[Target]] = []
    for model in models:
        pair: list[Target] = []
        if "direct" in paths:
            upstream = config.models[model].upstream
            pair.append(direct_target(model, upstream, await secrets.get(upstream.key_secret)))
        if gateway_key is not None:
            pair.append(gateway_target(model, gateway_url, gateway_key))
        plan.append(pair)
    return plan


def schedule(plan: list[list[Target]], runs: int, streams: tuple[bool, ...]) -> list[Job]:
    """Every request to make, alternating which path goes first so both see the same
    conditions."""
    jobs: list[Job] = []
    for pair in plan:
        for i in range(runs):
            for stream in streams:
                jobs += [(t, stream) for t in (pair if i % 2 == 0 else list(reversed(pair)))]
    return jobs


async def time_requests(
    session: aiohttp.ClientSession,
    jobs: list[Job],
    concurrency: int = 1,
    on_row: Callable[[int, LatencyRow], None] | None = None,
) -> list[LatencyRow]:
    """Rows in job order; at most `concurrency` requests in flight (1: sequential, as the seed)."""
    rows: list[LatencyRow | None] = [None] * len(jobs)
    gate = asyncio.Semaphore(concurrency)
    done = 0

    async def run(index: int, target: Target, stream: bool) -> None:
        nonlocal done
        async with gate:
            row = await measure(session, target, stream)
        rows[index] = row
        done += 1
        if on_row is not None:
            on_row(done, row)

    if concurrency <= 1:
        for index, (target, stream) in enumerate(jobs):
            await run(index, target, stream)
    else:
        await asyncio.gather(*(run(i, t, s) for i, (t, s) in enumerate(jobs)))
    return [r for r in rows if r is not None]


def chat_models(config: GatewayConfig, wanted: tuple[str, ...]) -> list[str]:
    chat = [name for name, m in config.models.items() if m.operation is Operation.CHAT]
    return [m for m in wanted if m in chat] if wanted else chat


async def run_scheduled() -> ProbeRun | None:
    """What the timer runs: probe, write the CSV, deliver it. Never raises for a bad upstream."""
    probe = ProbeSettings.from_env()
    if not probe.enabled:
        return None
    settings = Settings.from_env()
    config = load_config(settings)
    provider = secret_provider_from(settings)
    try:
        plan = await _plan(config, probe, provider)
    finally:
        await provider.aclose()
    timeout = aiohttp.ClientTimeout(total=120, connect=settings.upstream_connect_timeout)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        rows = await time_requests(session, schedule(plan, probe.requests, (False, True)))
    run_id = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{random.token_hex(3)}"
    log_outcome(run_id, rows)
    store = results_store(
        probe.results, settings.storage_connection_string, settings.azure_client_id
    )
    try:
        name = run_blob_name(datetime.now(UTC).date(), run_id)
        delivery = await deliver(store, name, to_csv(rows), Path(probe.spool))
    finally:
        await store.aclose()
    return ProbeRun(run_id, rows, delivery)


def log_outcome(run_id: str, rows: list[LatencyRow]) -> None:
    """A WARNING naming what failed when any request did; INFO for a run that went well."""
    failed = failure_summary(rows)
    if failed:
        log.warning("probe run %s: %s", run_id, failed)
    else:
        log.info("probe run %s: %d requests, none failed", run_id, len(rows))


async def _plan(
    config: GatewayConfig, probe: ProbeSettings, provider: SecretProvider
) -> list[list[Target]]:
    models = chat_models(config, probe.models)
    try:
        return await targets(
            config, models, ["direct", "gateway"], probe.gateway_url, provider, probe.key_secret
        )
    except (SecretNotFound, SecretProviderError) as exc:
        # Without the probe's gateway key the direct timings are still worth having.
        log.error("probe: no gateway key (%s); timing the direct path only", type(exc).__name__)
        return await targets(config, models, ["direct"], probe.gateway_url, provider, "")
