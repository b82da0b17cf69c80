"""`GET /status`'s page, for the gateway's operators: per system today's requests, errors,
tokens and cost (from the usage records) and the use of each limit now (the live counters);
per deployment its breaker, cooldown and today's error rate; and the latest latency probe's
comparison of the direct and gateway paths as inline SVG (svg_chart).

One self-contained page like the latency report's (page): no script, nothing fetched from
elsewhere, every cell escaped. It never holds a key, a key hash, a prompt, an upstream URL or a
secret name: nothing here is given one.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from datetime import datetime

from shared.limits.counters import Counter
from shared.limits.plan import COST_UNITS
from shared.report.page import _STYLE as REPORT_STYLE
from shared.report.page import _table
from shared.report.stats import Summary
from shared.report.svg_chart import render_svg
from shared.report.usage import Group, Tally
from shared.upstream.health import Health

UNIDENTIFIED = "-"  # a record's system when the caller was refused before it was known
_STYLE = REPORT_STYLE + "p.missing { color: #b00020; }\n"
_COUNTERS = {  # (check kind, label) -> what the counter holds
    ("rpm", "requests"): "requests this minute",
    ("tpm", "tokens"): "tokens this minute",
    ("conc", "concurrency"): "requests in flight",
    ("quota", "day"): "tokens today",
    ("quota", "month"): "tokens this month",
    ("budget", "day"): "spent today",
    ("budget", "month"): "spent this month",
}
_SCOPES = {"s": "system", "m": "model", "k": "key"}


@dataclass(frozen=True)
class Missing:
    """A part of the page that could not be read, and why (never an error's own text)."""

    why: str


@dataclass(frozen=True)
class Deployment:
    name: str  # its name in the gateway configuration
    kind: str  # azure, openai or foundry
    models: tuple[str, ...]  # the public models whose pools hold it


@dataclass(frozen=True)
class ProbeRun:
    name: str  # the run's CSV in the results location: <yyyy>/<mm>/<dd>/<run id>.csv
    summary: Summary


@dataclass(frozen=True)
class StatusInputs:
    at: datetime  # when the page was made (UTC)
    currency: str  # the price table's
    flush_seconds: float  # how often usage records are written
    quota_timezone: str
    systems: list[str] | Missing  # the registry's
    usage: Tally | Missing  # today's records (UTC), by system and deployment
    limits: dict[str, list[Counter]] | Missing | None  # per limited system; None: no Redis
    deployments: list[Deployment]
    health: tuple[int, dict[str, Health]] | Missing  # (now ms, health per deployment)
    shared_health: bool  # health kept in Redis for every instance, else this instance's
    probe: ProbeRun | Missing | None  # None: no results yet


def render_status(status: StatusInputs) -> str:
    at = f"{status.at:%Y-%m-%d %H:%M:%S} UTC"
    return "\n".join(
        [
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>Tollgate status</title>\n<style>{_STYLE}</style>\n</head>",
            "<body>\n<h1>Tollgate status</h1>",
            f'<p class="headline">{html.escape(f"As seen by this instance at {at}.")}</p>',
            _systems_section(status),
            _limits_section(status),
            _deployments_section(status),
            _probe_section(status.probe),
            "</body>\n</html>\n",
        ]
    )


def _heading(text: str) -> str:
    return f"<h2>{html.escape(text)}</h2>"


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def _missing(missing: Missing) -> str:
    return f'<p class="missing">{html.escape(missing.why)}</p>'


def _count(value: int) -> str:
    return f"{value:,}"


def _rate(errors: int, requests: int) -> str:
    return f"{errors / requests * 100:.1f}%" if requests else "-"


def sums_by(tally: Tally, position: int) -> dict[str, Group]:
    """The tally's groups summed over one of its dimensions (0: system, 1: deployment)."""
    sums: dict[str, Group] = {}
    for key, group in tally.groups.items():
        sums.setdefault(str(key[position]), Group()).merge(group)
    return sums


def _systems_section(status: StatusInputs) -> str:
    day = f"{status.at:%Y-%m-%d}"
    parts = [_heading(f"Systems today ({day}, UTC)")]
    if isinstance(status.usage, Missing):
        return "\n".join([*parts, _missing(status.usage)])
    sums = sums_by(status.usage, 0)
    known = [] if isinstance(status.systems, Missing) else status.systems
    ids = sorted(set(known) | set(sums))
    if not ids:
        return "\n".join([*parts, _note("No system is registered and no request was recorded.")])
    headers = ("system", "requests", "errors", "err%", "tokens", f"cost ({status.currency})")
    rows = [_system_cells(system, sums.get(system, Group())) for system in ids]
    flush = (
        f"From this gateway's usage records of today, as of the last flush (records are written "
        f"every {status.flush_seconds:g} s): {status.usage.records:,} records in "
        f"{status.usage.files:,} files."
    )
    if UNIDENTIFIED in sums:
        flush += f" Row {UNIDENTIFIED}: callers refused before their system was known."
    parts += [_table(headers, rows, 1), _note(flush)]
    if isinstance(status.systems, Missing):
        parts.append(_missing(status.systems))
    return "\n".join(parts)


def _system_cells(system: str, group: Group) -> list[str]:
    return [
        system,
        _count(group.requests),
        _count(group.errors),
        _rate(group.errors, group.requests),
        _count(group.total_tokens),
        f"{group.cost:,.4f}",
    ]


def _limits_section(status: StatusInputs) -> str:
    parts = [_heading("Limits now")]
    if status.limits is None:
        why = (
            "Without Redis (TOLLGATE_REDIS_URL) each gateway instance counts the limits in its "
            "own memory: the counters are per instance and are not shown here."
        )
        return "\n".join([*parts, _note(why)])
    if isinstance(status.limits, Missing):
        return "\n".join([*parts, _missing(status.limits)])
    rows = [
        _limit_cells(system, counter)
        for system, counters in sorted(status.limits.items())
        for counter in counters
    ]
    if not rows:
        return "\n".join([*parts, _note("No system has limits.")])
    headers = ("system", "scope", "counter", "used", "limit", "use%")
    quotas = (
        f"The live counters every instance shares, read from Redis. Days and months are those "
        f"of {status.quota_timezone}; money is in {status.currency}."
    )
    return "\n".join([*parts, _table(headers, rows, 3), _note(quotas)])


def _limit_cells(system: str, counter: Counter) -> list[str]:
    kind, _, name = counter.scope.partition(":")
    scope = _SCOPES.get(kind, kind) + (f" {name}" if name else "")
    check = counter.check
    what = _COUNTERS.get((check.kind, check.label), check.kind)
    if check.kind == "budget":
        used, limit = f"{counter.used / COST_UNITS:,.4f}", f"{check.limit / COST_UNITS:,.4f}"
    else:
        used, limit = _count(counter.used), _count(check.limit)
    share = f"{counter.used / check.limit * 100:.1f}%" if check.limit else "-"
    return [system, scope, what, used, limit, share]


def _deployments_section(status: StatusInputs) -> str:
    parts = [_heading("Deployments")]
    usage = {} if isinstance(status.usage, Missing) else sums_by(status.usage, 1)
    health = None if isinstance(status.health, Missing) else status.health
    headers = (
        "deployment",
        "kind",
        "models",
        "breaker",
        "cooldown",
        "failures in a row",
        "requests today",
        "errors today",
        "err% today",
    )
    rows = [_deployment_cells(d, usage.get(d.name, Group()), health) for d in status.deployments]
    parts.append(_table(headers, rows, 5))
    where = (
        "Breakers and cooldowns are shared by every instance through Redis."
        if status.shared_health
        else "Breakers and cooldowns as this instance sees them (without Redis each instance "
        "keeps its own)."
    )
    parts.append(_note(f"{where} Today's figures are from the usage records (UTC)."))
    for missing in (status.health, status.usage):
        if isinstance(missing, Missing):
            parts.append(_missing(missing))
    return "\n".join(parts)


def _deployment_cells(
    deployment: Deployment, group: Group, health: tuple[int, dict[str, Health]] | None
) -> list[str]:
    state = ["unknown", "unknown", "-"]
    if health is not None and deployment.name in health[1]:
        now, found = health[0], health[1][deployment.name]
        state = [_breaker(found, now), _cooldown(found, now), _count(found.failures)]
    return [
        deployment.name,
        deployment.kind,
        ", ".join(deployment.models) or "-",
        *state,
        _count(group.requests),
        _count(group.errors),
        _rate(group.errors, group.requests),
    ]


def _seconds(ms: int) -> str:
    return f"{math.ceil(ms / 100) / 10:g} s"


def _breaker(health: Health, now: int) -> str:
    if health.open_until_ms > now:
        return f"open, {_seconds(health.open_until_ms - now)} left"
    if health.half_open(now):
        return "half-open: the next request is a trial"
    return "closed"


def _cooldown(health: Health, now: int) -> str:
    if health.cool_until_ms > now:
        return f"{_seconds(health.cool_until_ms - now)} left"
    return "none"


def _probe_section(probe: ProbeRun | Missing | None) -> str:
    parts = [_heading("Latency: direct versus gateway (the latest probe run)")]
    if probe is None:
        return "\n".join([*parts, _note("No probe results yet.")])
    if isinstance(probe, Missing):
        return "\n".join([*parts, _missing(probe)])
    summary = probe.summary
    if not summary.rows:
        return "\n".join([*parts, _note(f"The latest probe run ({probe.name}) has no rows.")])
    failed = sum(group.errors for group in summary.groups)
    when = _period(summary.first, summary.last)
    about = f"Run {probe.name}: {summary.rows:,} requests ({failed:,} failed), {when}."
    return "\n".join([*parts, _note(about), f'<div class="chart">\n{render_svg(summary)}\n</div>'])


def _period(first: datetime | None, last: datetime | None) -> str:
    if first is None or last is None:
        return "no times"
    return f"{first:%Y-%m-%d %H:%M:%S} to {last:%Y-%m-%d %H:%M:%S}"
