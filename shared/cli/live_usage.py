"""`tollgate systems usage ID`: each limit of a system against what is counted right now
(requests and tokens this minute, requests in flight, tokens today and this month), read from
the Redis the gateways share. Without Redis each gateway process counts for itself, and nothing
outside it can see the counts: the command says so."""

from __future__ import annotations

import argparse
import asyncio
import math
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.cli import registry_io
from shared.cli.errors import CommandError
from shared.cli.limits_view import scopes
from shared.cli.output import json_option, note, print_json, table
from shared.cli.where import cli_settings
from shared.limits.config import Limits, Scope, parse_limits
from shared.limits.counters import Counter, read_counters
from shared.limits.plan import COST_UNITS
from shared.registry import admin
from shared.settings import Settings

PREFIXES = {"system": "s", "model": "m", "key": "k"}  # as shared/limits/config.py names scopes
KINDS = {prefix: kind for kind, prefix in PREFIXES.items()}
NAMES = {"rpm": "rpm", "tpm": "tpm", "conc": "concurrency"}
LABELS = {
    "rpm": "requests this minute",
    "tpm": "tokens this minute",
    "concurrency": "requests in flight",
    "tokens_per_day": "tokens today",
    "tokens_per_month": "tokens this month",
    "budget_per_day": "spent today",
    "budget_per_month": "spent this month",
}


def add_command(sys_cmds: Any) -> None:
    usage = sys_cmds.add_parser(
        "usage",
        help="live counters against each limit of a system (needs TOLLGATE_REDIS_URL)",
        description="What the gateways have counted against each limit right now, read from "
        "the Redis they share (TOLLGATE_REDIS_URL, as the gateways have it).",
    )
    usage.add_argument("system_id", metavar="ID", help="the system")
    json_option(usage, "the counters")
    usage.set_defaults(handler=cmd_usage)


def cmd_usage(args: argparse.Namespace) -> int:
    found = counted_scopes(admin.system_of(registry_io.read(), args.system_id))
    if not found:
        print(f"system '{args.system_id}' has no limits: nothing is counted")
        return 0
    settings = redis_or_note()
    if settings is None:
        return 1
    now_ms, counters = asyncio.run(read_live(settings, args.system_id, found))
    redis = _without_password(settings.redis_url or "")
    when = datetime.fromtimestamp(now_ms / 1000, UTC).isoformat(timespec="seconds")
    when = when.replace("+00:00", "Z")
    if args.json:
        print_json(_as_json(args.system_id, redis, when, settings.quota_timezone, counters))
        return 0
    note(f"counters in {redis} at {when} (quotas: {settings.quota_timezone})")
    print(table(("SCOPE", "COUNTER", "USED", "LIMIT", "LEFT", "RESETS IN"), _rows(counters)))
    return 0


def counted_scopes(spec: dict[str, Any]) -> list[Scope]:
    """The system's limits as the gateways count them: scopes named as plan_for expects."""
    return [
        Scope(
            PREFIXES[s.kind] + ("" if s.name is None else f":{s.name}"),
            parse_limits(s.limits, s.label),
        )
        for s in scopes(spec)
    ]


def redis_or_note() -> Settings | None:
    """The CLI's settings when they name the gateways' Redis; else None, having said why."""
    settings = cli_settings()
    if settings.redis_url:
        return settings
    note(
        "tollgate: TOLLGATE_REDIS_URL is not set, so each gateway process counts the limits "
        "in its own memory, and they cannot be read from outside it. Configure Redis (the "
        "same TOLLGATE_REDIS_URL for the gateways and here) to share and see them."
    )
    return None


def budgeted(scopes: list[Scope]) -> list[Scope]:
    """The scopes with a budget, each with its budgets only."""
    return [
        Scope(
            s.name,
            Limits(
                budget_per_day=s.limits.budget_per_day, budget_per_month=s.limits.budget_per_month
            ),
        )
        for s in scopes
        if s.limits.budget_per_day is not None or s.limits.budget_per_month is not None
    ]


async def read_live(
    settings: Settings, system_id: str, found: list[Scope]
) -> tuple[int, list[Counter]]:
    try:
        zone = ZoneInfo(settings.quota_timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise CommandError(
            f"TOLLGATE_QUOTA_TIMEZONE: unknown zone {settings.quota_timezone!r}"
        ) from None
    from redis.exceptions import RedisError  # redis-py only for this command

    from shared.storage.redis_client import admin_client

    client, credential = admin_client(settings)
    lease_ms = int(settings.concurrency_lease_seconds * 1000)
    try:
        return await read_counters(client, system_id, found, datetime.now(zone), lease_ms)
    except (RedisError, OSError) as exc:
        where = _without_password(settings.redis_url or "")
        raise CommandError(f"cannot read the counters from {where}: {exc}") from None
    finally:
        await client.aclose()
        if credential is not None:
            await credential.close()


def _name(counter: Counter) -> str:
    if counter.check.kind == "quota":
        return f"tokens_per_{counter.check.label}"
    if counter.check.kind == "budget":
        return f"budget_per_{counter.check.label}"
    return NAMES[counter.check.kind]


def _amounts(counter: Counter) -> tuple[float, float]:
    """(used, limit): money in the price table's currency, else counts."""
    used, limit = counter.used, counter.check.limit
    if counter.check.kind == "budget":
        return used / COST_UNITS, limit / COST_UNITS
    return used, limit


def _scope(counter: Counter) -> tuple[str, str | None]:
    kind, _, name = counter.scope.partition(":")
    return KINDS[kind], name or None


def _rows(counters: list[Counter]) -> list[tuple[Any, ...]]:
    rows = []
    for counter in counters:
        kind, name = _scope(counter)
        used, limit = _amounts(counter)
        rows.append(
            (
                kind if name is None else f"{kind} {name}",
                LABELS[_name(counter)],
                round(used, 4),
                limit,
                round(max(limit - used, 0), 4),
                None if counter.resets_in_ms is None else _duration(counter.resets_in_ms),
            )
        )
    return rows


def _as_json(
    system_id: str, redis: str, when: str, zone: str, counters: list[Counter]
) -> dict[str, Any]:
    return {
        "system": system_id,
        "redis": redis,
        "time": when,
        "quota_timezone": zone,
        "counters": [
            {
                "scope": _scope(c)[0],
                "name": _scope(c)[1],
                "counter": _name(c),
                "used": _amounts(c)[0],
                "limit": _amounts(c)[1],
                "remaining": max(_amounts(c)[1] - _amounts(c)[0], 0),
                "resets_in_ms": c.resets_in_ms,
            }
            for c in counters
        ],
    }


def _duration(ms: int) -> str:
    if ms < 60_000:
        return f"{math.ceil(ms / 100) / 10:g}s"
    minutes = math.ceil(ms / 60_000)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    return (f"{days}d" if days else "") + (f"{hours}h" if days or hours else "") + f"{minutes}m"


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))
