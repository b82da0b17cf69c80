"""The bench's figures: each gateway against the reference relay measured in the same run (the
ratios that hold from machine to machine), what it adds over direct, what limits cost, and the
targets met or not."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DIRECT, REFERENCE = "direct", "reference"
PLAIN, REDIS, LIMITS = "gateway", "gateway_redis", "gateway_limits"
BUDGET, CACHE, GUARD = "gateway_budget", "gateway_cache", "gateway_guard"
SAFETY = "gateway_safety"
WORKERS = "gateway_workers"
NOT_JUDGED = frozenset({WORKERS, CACHE, GUARD, SAFETY})  # many workers; no upstream; optional
SCALING_TARGET = 1.7  # N workers' requests/s over one worker's, full path (issue #15)
# Each feature's cost: the path with it minus the path without it.
FEATURE_STEPS = (
    (PLAIN, REDIS, "Redis configured, no limits (deployment health shared in Redis)"),
    (REDIS, LIMITS, "limits (rpm + tpm) checked and settled in Redis"),
    (LIMITS, BUDGET, "budgets (money per day and month) in the same Redis scripts"),
    (LIMITS, CACHE, "a cache hit (looked up in Redis) instead of the upstream call"),
    (LIMITS, GUARD, "a content policy checked in the gateway (prompt and streamed answer)"),
    (LIMITS, SAFETY, "a content policy checked by Content Safety (stand-in, zero latency)"),
)


@dataclass(frozen=True)
class Goal:
    """A target from issue #15, against the reference relay of the same run: `plain` applies
    to the gateway without Redis, `full` to the paths with Redis (limits checked there)."""

    key: str
    text: str
    plain: float
    full: float
    unit: str
    at_most: bool = True

    def limit(self, path: str) -> float:
        return self.plain if path == PLAIN else self.full


GOALS = (
    Goal(
        "rps_share_chat_c64", "req/s, chat, 64 conns, share of the reference's", 0.6, 0.5, "", False
    ),
    Goal("cpu_ratio_chat_c64", "CPU/request, chat, 64 conns, x the reference's", 2.0, 2.5, "x"),
    Goal(
        "p50_over_reference_chat_c1_ms",
        "p50, chat, 1 conn, ms past the reference's",
        0.3,
        0.6,
        "ms",
    ),
    Goal(
        "p99_over_reference_chat_c1_ms",
        "p99, chat, 1 conn, ms past the reference's",
        0.6,
        1.2,
        "ms",
    ),
    Goal(
        "first_chunk_over_reference_p50_ms",
        "first chunk p50, ms past the reference's",
        0.3,
        0.3,
        "ms",
    ),
    Goal("errors_c64", "errors at 64 connections (chat + stream)", 0.0, 0.0, ""),
    Goal("peak_rss", "peak RSS (MB)", 100.0, 100.0, "MB"),
)


def find(phases: list[dict[str, Any]], mode: str, connections: int, path: str) -> dict[str, Any]:
    for phase in phases:
        if (phase["mode"], phase["connections"], phase["path"]) == (mode, connections, path):
            return phase
    raise KeyError((mode, connections, path))


def overhead(phases: list[dict[str, Any]], path: str) -> list[dict[str, Any]]:
    """Gateway minus direct, per phase: a difference of percentiles, not of paired requests."""
    rows = []
    for phase in phases:
        if phase["path"] != path:
            continue
        direct = find(phases, phase["mode"], phase["connections"], DIRECT)
        rows.append(
            {
                "mode": phase["mode"],
                "connections": phase["connections"],
                "added_p50_ms": phase["p50_ms"] - direct["p50_ms"],
                "added_p90_ms": phase["p90_ms"] - direct["p90_ms"],
                "added_p99_ms": phase["p99_ms"] - direct["p99_ms"],
                "rps_ratio": phase["rps"] / direct["rps"] if direct["rps"] else 0.0,
            }
        )
    return rows


def ttfb_overhead(ttfb: dict[str, Any], path: str) -> dict[str, float]:
    direct, gateway = ttfb["paths"][DIRECT], ttfb["paths"][path]
    return {
        "added_p50_ms": gateway["p50_ms"] - direct["p50_ms"],
        "added_p99_ms": gateway["p99_ms"] - direct["p99_ms"],
    }


def feature_cost(
    phases: list[dict[str, Any]], ttfb: dict[str, Any], without: str, with_: str, text: str
) -> dict[str, Any]:
    """The `with_` path minus the `without` path, phase by phase: what one feature costs."""
    rows = []
    for phase in phases:
        if phase["path"] != with_:
            continue
        base = find(phases, phase["mode"], phase["connections"], without)
        rows.append(
            {
                "mode": phase["mode"],
                "connections": phase["connections"],
                "p50_ms": phase["p50_ms"] - base["p50_ms"],
                "p99_ms": phase["p99_ms"] - base["p99_ms"],
                "cpu_ms_per_request": phase["cpu_ms_per_request"] - base["cpu_ms_per_request"],
                "rps": phase["rps"] - base["rps"],
            }
        )
    paths = ttfb["paths"]
    return {
        "feature": text,
        "without": without,
        "with": with_,
        "phases": rows,
        "ttfb_p50_ms": paths[with_]["p50_ms"] - paths[without]["p50_ms"],
    }


def figures(
    path: str, phases: list[dict[str, Any]], versus: dict[str, float], rss: float
) -> dict[str, float]:
    """What the targets judge: the ratios to the reference, errors and peak RSS."""
    c64 = [find(phases, mode, 64, path) for mode in ("chat", "stream")]
    errors = float(sum(p["error_count"] for p in c64))
    return {**versus, "errors_c64": errors, "peak_rss": rss}


def versus_reference(
    path: str, phases: list[dict[str, Any]], ttfb: dict[str, Any], rss: dict[str, float]
) -> dict[str, float]:
    """The gateway as multiples of the reference (shares, ratios) or past it (ms)."""

    def at(mode: str, connections: int, name: str) -> dict[str, Any]:
        return find(phases, mode, connections, name)

    def share(mode: str, connections: int) -> float:
        base = at(mode, connections, REFERENCE)["rps"]
        return at(mode, connections, path)["rps"] / base if base else 0.0

    cpu_ref = at("chat", 64, REFERENCE)["cpu_ms_per_request"] or 0.0
    cpu = at("chat", 64, path)["cpu_ms_per_request"] or 0.0
    first = ttfb["paths"]
    return {
        "rps_share_chat_c64": share("chat", 64),
        "rps_share_stream_c64": share("stream", 64),
        "rps_share_chat_c1": share("chat", 1),
        "cpu_ratio_chat_c64": cpu / cpu_ref if cpu_ref else 0.0,
        "p50_over_reference_chat_c1_ms": at("chat", 1, path)["p50_ms"]
        - at("chat", 1, REFERENCE)["p50_ms"],
        "p99_over_reference_chat_c1_ms": at("chat", 1, path)["p99_ms"]
        - at("chat", 1, REFERENCE)["p99_ms"],
        "first_chunk_over_reference_p50_ms": first[path]["p50_ms"] - first[REFERENCE]["p50_ms"],
        "peak_rss_ratio": rss[path] / rss[REFERENCE] if rss.get(REFERENCE) else 0.0,
    }


def scaling(phases: list[dict[str, Any]], workers: int) -> dict[str, Any]:
    """N workers against one, both on the full path (limits shared in Redis), same run."""

    def ratio(mode: str) -> float:
        one = find(phases, mode, 64, LIMITS)["rps"]
        return find(phases, mode, 64, WORKERS)["rps"] / one if one else 0.0

    chat = ratio("chat")
    one_cpu = find(phases, "chat", 64, LIMITS)["cpu_ms_per_request"] or 0.0
    many_cpu = find(phases, "chat", 64, WORKERS)["cpu_ms_per_request"] or 0.0
    return {
        "workers": workers,
        "rps_ratio_chat_c64": chat,
        "rps_ratio_stream_c64": ratio("stream"),
        # CPU per request summed over the workers, against one worker's: what each extra
        # process costs. workers / it is what N workers would give on N CPUs of their own.
        "cpu_ratio_chat_c64": many_cpu / one_cpu if one_cpu else 0.0,
        "rps_ratio_on_own_cpus": workers * one_cpu / many_cpu if many_cpu else 0.0,
        "target": SCALING_TARGET,
        "met": chat >= SCALING_TARGET,
    }


def judge(path: str, values: dict[str, float]) -> list[dict[str, Any]]:
    rows = []
    for goal in GOALS:
        value, limit = values[goal.key], goal.limit(path)
        rows.append(
            {
                "target": goal.key,
                "description": goal.text,
                "path": path,
                "value": value,
                "limit": limit,
                "unit": goal.unit,
                "comparison": "<=" if goal.at_most else ">=",
                "met": value <= limit if goal.at_most else value >= limit,
            }
        )
    return rows


def build(
    *,
    machine: dict[str, Any],
    settings: dict[str, Any],
    labels: dict[str, str],
    phases: list[dict[str, Any]],
    ttfb: dict[str, Any],
    peak_rss_mb: dict[str, float],
) -> dict[str, Any]:
    gateways = [name for name in labels if name not in (DIRECT, REFERENCE)]
    results: dict[str, Any] = {
        "machine": machine,
        "settings": settings,
        "paths": labels,
        "phases": phases,
        "ttfb": ttfb,
        "gateways": {},
        "targets": [],
        "feature_costs": [
            feature_cost(phases, ttfb, without, with_, text)
            for without, with_, text in FEATURE_STEPS
            if without in gateways and with_ in gateways
        ],
        "not_measured": ["metrics export (no exporter)", "redaction (no PII policy set)"],
    }
    versus = (
        {name: versus_reference(name, phases, ttfb, peak_rss_mb) for name in gateways}
        if REFERENCE in labels
        else {}
    )
    for name in gateways:
        results["gateways"][name] = {
            "label": labels[name],
            "peak_rss_mb": peak_rss_mb[name],
            "overhead": overhead(phases, name),
            "ttfb_overhead": ttfb_overhead(ttfb, name),
        }
        if versus and name not in NOT_JUDGED:  # the targets are for one worker
            judged = figures(name, phases, versus[name], peak_rss_mb[name])
            results["targets"] += judge(name, judged)
    if WORKERS in gateways and LIMITS in gateways:
        results["scaling"] = scaling(phases, int(settings.get("workers", 0)))
    if REFERENCE in labels:
        results["reference"] = {
            "label": labels[REFERENCE],
            "peak_rss_mb": peak_rss_mb[REFERENCE],
            "overhead": overhead(phases, REFERENCE),
            "ttfb_overhead": ttfb_overhead(ttfb, REFERENCE),
        }
        results["versus_reference"] = versus
    # Targets are for the full production path: limits in Redis, when it ran.
    results["targets_judged_on"] = LIMITS if LIMITS in gateways else PLAIN
    return results


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def table(results: dict[str, Any]) -> str:
    m, s, labels = results["machine"], results["settings"], results["paths"]
    lines = [
        f"Tollgate bench: {m['nproc']} CPUs ({m['cpu_model']}), Python {m['python']}; "
        f"load average {m['load_average_at_start']} at start, {m['load_average_at_end']} at end",
        f"Load: {s['load_client']}; {s['rounds']} rounds of {s['seconds_per_phase_and_round']} s "
        f"per phase (+{s['warmup_seconds_per_phase']} s warm-up in the first); "
        f"upstream: {s['upstream']}",
        f"Gateway: {s['gateway']}; Redis: {s['redis']}",
        f"Reference: {s.get('reference', '-')}; pinning: {s.get('pinning', '-')}",
        "Production path:",
        *(f"  {name:14} {state}" for name, state in s["features"].items()),
        *reference_lines(results),
        "",
        f"{'phase':11} {'path':26} {'req/s':>8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} "
        f"{'errors':>6} {'CPU ms/req':>10}",
    ]
    for p in results["phases"]:
        lines.append(
            f"{p['mode']:6} c{p['connections']:<3} {labels[p['path']]:26} {p['rps']:8.0f} "
            f"{p['p50_ms']:8.3f} {p['p90_ms']:8.3f} {p['p99_ms']:8.3f} {p['error_count']:6d} "
            f"{_ms(p['cpu_ms_per_request']):>10}"
        )
    ttfb = results["ttfb"]
    lines += [
        "",
        f"Time to first streamed chunk (1 connection, {ttfb['samples']} requests per path, "
        "alternating):",
    ]
    for name, spread in ttfb["paths"].items():
        lines.append(
            f"  {labels[name]:26} p50 {spread['p50_ms']:.3f}  p90 {spread['p90_ms']:.3f}  "
            f"p99 {spread['p99_ms']:.3f} ms"
        )
    lines += ["", "Added over direct (path minus direct, ms):"]
    servers = [results["reference"]] if "reference" in results else []
    for gateway in [*servers, *results["gateways"].values()]:
        lines.append(f"  {gateway['label']}: peak RSS {gateway['peak_rss_mb']:.1f} MB")
        for row in gateway["overhead"]:
            lines.append(
                f"    {row['mode']:6} c{row['connections']:<3} p50 {row['added_p50_ms']:+.3f}  "
                f"p99 {row['added_p99_ms']:+.3f}  req/s {row['rps_ratio']:.0%} of direct"
            )
        added = gateway["ttfb_overhead"]
        lines.append(
            f"    first chunk  p50 {added['added_p50_ms']:+.3f}  p99 {added['added_p99_ms']:+.3f}"
        )
    for cost in results["feature_costs"]:
        lines += ["", f"Cost of {cost['feature']}:"]
        for row in cost["phases"]:
            lines.append(
                f"  {row['mode']:6} c{row['connections']:<3} p50 {row['p50_ms']:+.3f} ms  "
                f"p99 {row['p99_ms']:+.3f} ms  CPU {row['cpu_ms_per_request']:+.3f} ms/req  "
                f"req/s {row['rps']:+.0f}"
            )
        lines.append(f"  first chunk p50 {cost['ttfb_p50_ms']:+.3f} ms")
    lines += ["", *target_lines(results), *scaling_lines(results)]
    lines.append("Not measured: " + ", ".join(results["not_measured"]))
    return "\n".join(lines)


REFERENCE_ROWS = (
    ("rps_share_chat_c64", "requests/s, chat, 64 connections", "{:.0%} of it"),
    ("rps_share_stream_c64", "requests/s, stream, 64 connections", "{:.0%} of it"),
    ("rps_share_chat_c1", "requests/s, chat, 1 connection", "{:.0%} of it"),
    ("cpu_ratio_chat_c64", "CPU per request, chat, 64 connections", "{:.2f}x"),
    ("p50_over_reference_chat_c1_ms", "latency p50, chat, 1 connection", "{:+.3f} ms"),
    ("p99_over_reference_chat_c1_ms", "latency p99, chat, 1 connection", "{:+.3f} ms"),
    ("first_chunk_over_reference_p50_ms", "first streamed chunk, p50", "{:+.3f} ms"),
    ("peak_rss_ratio", "peak RSS", "{:.2f}x"),
)


def reference_lines(results: dict[str, Any]) -> list[str]:
    """Each gateway against the reference relay, in the same run: the figures to compare."""
    versus = results.get("versus_reference")
    if not versus:
        return []
    names = list(versus)
    header = f"{'Against the reference relay (same run)':42}"
    header += "".join(f" {results['paths'][name]:>26}" for name in names)
    lines = ["", header]
    for key, text, shape in REFERENCE_ROWS:
        lines.append(f"{text:42}" + "".join(f" {shape.format(versus[n][key]):>26}" for n in names))
    return lines


def target_lines(results: dict[str, Any]) -> list[str]:
    judged = results["targets_judged_on"]
    names = [name for name in results["gateways"] if name not in NOT_JUDGED]
    if not results["targets"]:
        return ["Targets: not judged (no reference relay in this run)"]
    header = f"{'Targets (issue #15, one worker)':50} {'no Redis / Redis':>16}"
    for name in names:
        header += f" {results['paths'][name]:>26}"
    lines = [header]
    for goal in GOALS:
        rows = {t["path"]: t for t in results["targets"] if t["target"] == goal.key}
        sign = "<=" if goal.at_most else ">="
        line = f"{goal.text:50} {f'{sign} {goal.plain:g} / {goal.full:g}':>16}"
        for name in names:
            row = rows[name]
            cell = f"{row['value']:.3f} {'met' if row['met'] else 'MISSED'}"
            line += f" {cell:>26}"
        lines.append(line)
    met = [t for t in results["targets"] if t["path"] == judged]
    why = "the full production path" if judged == LIMITS else "no Redis, so no limits run"
    lines.append(
        f"Judged on {results['paths'][judged]} ({why}): "
        f"{sum(t['met'] for t in met)} of {len(met)} targets met"
    )
    return lines


def scaling_lines(results: dict[str, Any]) -> list[str]:
    scaled = results.get("scaling")
    if not scaled:
        return []
    verdict = "met" if scaled["met"] else "MISSED"
    return [
        f"Scaling: {scaled['workers']} workers give {scaled['rps_ratio_chat_c64']:.2f}x one "
        f"worker's requests/s (chat, 64 connections; stream {scaled['rps_ratio_stream_c64']:.2f}x),"
        f" limits shared in Redis; target >= {scaled['target']:g}x: {verdict}",
        f"  CPU per request over the workers: {scaled['cpu_ratio_chat_c64']:.2f}x one worker's; "
        f"on CPUs of their own (none shared with the load, simulator and Redis) that would be "
        f"{scaled['rps_ratio_on_own_cpus']:.2f}x",
    ]
