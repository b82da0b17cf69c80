"""`GET /status`: the operators' status page (shared/report/status_page.py), when
TOLLGATE_STATUS_PAGE is on, for the gateway's operators (admin_access).

Each part is read at once and within READ_SECONDS, so the page never hangs: a part that is
slow or fails is shown as missing, with why, and the rest is shown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from shared.errors import GatewayError
from shared.gateway import Gateway
from shared.http.admin_access import operator_gateway
from shared.http.inbound import request_id_of
from shared.limits.config import Scope
from shared.limits.counters import Counter, read_counters
from shared.limits.plan import zone
from shared.probe.latency_csv import read_csv
from shared.registry.systems import Registry
from shared.report.stats import summarise
from shared.report.status_page import (
    Deployment,
    Missing,
    ProbeRun,
    StatusInputs,
    render_status,
)
from shared.report.usage import Tally, read_usage
from shared.report.usage_files import location_files
from shared.settings import ProbeSettings, Settings
from shared.storage.documents import results_store
from shared.upstream.health import Health

log = logging.getLogger("tollgate.status")
T = TypeVar("T")
READ_SECONDS = 3.0  # each part of the page
PROBE_DAYS = 7  # how far back the latest probe run is looked for
_HEADERS = {
    "cache-control": "no-store",
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


async def status_page(request: Request) -> Response:
    request_id = request_id_of(request)
    try:
        gateway = await operator_gateway(
            request,
            lambda settings: settings.status_page,
            "The status page is not served here (TOLLGATE_STATUS_PAGE).",
        )
    except GatewayError as exc:
        return exc.to_response({"x-request-id": request_id})
    page = render_status(await gather_status(gateway))
    return HTMLResponse(page, headers={**_HEADERS, "x-request-id": request_id})


async def gather_status(gateway: Gateway) -> StatusInputs:
    at = datetime.now(UTC)
    settings = gateway.settings
    systems, usage, limits, health, probe = await asyncio.gather(
        _bounded(_systems(gateway), "the registry"),
        _bounded(today_usage(settings, at.date()), "today's usage records"),
        _bounded(_limits(gateway), "the limit counters in Redis"),
        _bounded(_health(gateway), "the deployments' health"),
        _bounded(latest_probe(settings, at.date()), "the probe results"),
    )
    return StatusInputs(
        at=at,
        currency=gateway.config.currency,
        flush_seconds=settings.usage_flush_seconds,
        quota_timezone=settings.quota_timezone,
        systems=systems,
        usage=usage,
        limits=limits,
        deployments=deployments(gateway),
        health=health,
        shared_health=gateway.redis is not None,
        probe=probe,
    )


async def _bounded(read: Awaitable[T], what: str) -> T | Missing:
    try:
        async with asyncio.timeout(READ_SECONDS):
            return await read
    except TimeoutError:
        return Missing(f"{what}: not read within {READ_SECONDS:g} s")
    except Exception as exc:  # shown as missing; an error's text could name a host or a path
        log.warning("status: %s could not be read (%s)", what, type(exc).__name__)
        return Missing(f"{what}: could not be read ({type(exc).__name__})")


async def _systems(gateway: Gateway) -> list[str]:
    return sorted((await gateway.registry.current()).systems)


async def today_usage(settings: Settings, day: date) -> Tally:
    """Today's usage records (UTC) by system and deployment."""
    tally = Tally(("system", "deployment"), day, day)
    files = location_files(
        settings.usage_records,
        settings.storage_connection_string,
        settings.azure_client_id,
        day,
        day,
    )
    try:
        await read_usage(files, tally)
    finally:
        await files.aclose()
    return tally


async def _limits(gateway: Gateway) -> dict[str, list[Counter]] | None:
    """Each limited system's counters, read from the Redis every instance shares; None without
    Redis (each instance then counts in its own memory)."""
    if gateway.redis is None:
        return None
    registry = await gateway.registry.current()
    now = datetime.now(zone(gateway.settings.quota_timezone))
    lease_ms = int(gateway.settings.concurrency_lease_seconds * 1000)
    limited = {sid: found for sid in registry.systems if (found := counted_scopes(registry, sid))}
    reads = [
        read_counters(gateway.redis, sid, found, now, lease_ms) for sid, found in limited.items()
    ]
    counters = await asyncio.gather(*reads)
    return {sid: found for sid, (_, found) in zip(limited, counters, strict=True)}


def counted_scopes(registry: Registry, system_id: str) -> list[Scope]:
    """A system's limits as the gateways count them: its own, each model's, each active key's
    (the scopes Caller.scopes gives a request, for every model and key at once)."""
    system = registry.systems[system_id]
    found = [Scope("s", system.limits)]
    found += [Scope(f"m:{model}", limits) for model, limits in sorted(system.model_limits.items())]
    found += [
        Scope(f"k:{key.key_id}", key.limits)
        for key in sorted(registry.keys_of(system_id), key=lambda k: k.key_id)
        if key.active
    ]
    return [scope for scope in found if not scope.limits.empty]


async def _health(gateway: Gateway) -> tuple[int, dict[str, Health]]:
    return await gateway.dispatcher.balancer.health_now(list(gateway.config.upstreams))


def deployments(gateway: Gateway) -> list[Deployment]:
    """The configured deployments, by name and kind only: never a URL or a key's name."""
    config = gateway.config
    serving: dict[str, set[str]] = {name: set() for name in config.upstreams}
    for model_name, model in config.models.items():
        for member in model.pool:
            serving.setdefault(member.upstream.name, set()).add(model_name)
    return [
        Deployment(name, upstream.kind, tuple(sorted(serving[name])))
        for name, upstream in sorted(config.upstreams.items())
    ]


async def latest_probe(settings: Settings, today: date) -> ProbeRun | None:
    """The latest probe run of the last PROBE_DAYS days, summarised; None when there is none."""
    location = ProbeSettings.from_env().results
    store = results_store(location, settings.storage_connection_string, settings.azure_client_id)
    try:
        names = await store.names(today - timedelta(days=PROBE_DAYS - 1), today)
        if not names:
            return None
        name = max(names)  # <yyyy>/<mm>/<dd>/<UTC time>-<random>.csv: the latest sorts last
        rows = list(read_csv(await store.get(name)))
    finally:
        await store.aclose()
    return ProbeRun(name, summarise(rows))
