"""`make bench` (`python -m bench.run`): what the gateway adds to a request, and what it costs.

The simulator (zero latency) is the upstream; the gateway runs as users run it (`tollgate
serve`, one worker): one process without Redis, and one with Redis serving a system without
limits and one with limits. Load comes from wrk in a process of its own; each phase is run
direct to the simulator and through each gateway path in turn, so all see the same conditions.
See README.md, "Performance".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import redis

from bench import report
from bench.load import (
    Load,
    Target,
    ensure_wrk,
    run_client,
    run_wrk,
    time_first_chunks,
    warm_up,
    wrk_version,
)
from bench.procs import (
    PrivateRedis,
    Service,
    cpu_seconds,
    peak_rss_mb,
    pin,
    start_gateway,
    start_reference,
    start_simulator,
    tollgate,
)
from shared.report.stats import quantile

T = TypeVar("T")

CHAT_PATH = "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Does Azure OpenAI support customer managed keys?"},
]
BODIES = {
    "chat": json.dumps({"messages": MESSAGES}).encode(),
    "stream": json.dumps({"messages": MESSAGES, "stream": True}).encode(),
}
CONNECTIONS = (1, 64)
DIRECT, REFERENCE = "direct", "reference"
PLAIN, REDIS, LIMITS = "gateway", "gateway_redis", "gateway_limits"
BUDGET, CACHE, GUARD = "gateway_budget", "gateway_cache", "gateway_guard"
SAFETY = "gateway_safety"
WORKERS = "gateway_workers"  # with --workers N: the full path served by N worker processes
LABELS = {
    DIRECT: "direct",
    REFERENCE: "reference relay (aiohttp)",
    PLAIN: "gateway, no Redis",
    REDIS: "gateway + Redis, no limits",
    LIMITS: "gateway + Redis + limits",
    BUDGET: "... + budgets",
    CACHE: "... + cache hits",
    GUARD: "... + content policy",
    SAFETY: "... + Content Safety",
    WORKERS: "gateway + limits, N workers",
}
# High enough that nothing is refused: the bench measures the check, not a refusal.
BENCH_LIMITS = ("--rpm", "10000000", "--tpm", "10000000000")
BENCH_BUDGETS = ("--budget-per-day", "1000000000", "--budget-per-month", "10000000000")
PRICE = {"prompt_per_million": 2.5, "completion_per_million": 10}
# Checked in the gateway (no Content Safety here): what the policy itself costs, streams included.
SAFETY_POLICY = json.dumps({"prompt": {"violence": 4}, "answer": {"violence": 4}})
BENCH_POLICY = json.dumps({"patterns": ["(?i)internal use only", "(?i)project \\w+ secret"]})
FEATURES = {
    "key check": "on (every gateway request)",
    "limits": "rpm + tpm in Redis on 'gateway + Redis + limits' and the two after it",
    "budgets": "per day and month, on '... + budgets' only",
    "cache": "on '... + cache hits' only: every request after the first is a hit (in Redis)",
    "content policy": "on '... + content policy' only: local patterns on prompts and answers",
    "Content Safety": "on '... + Content Safety' only: harm categories on prompts and streamed "
    "answers, by a local HTTPS stand-in of the service (zero latency) through its SDK",
    "Redis": "none on 'gateway, no Redis'; else set (deployment health shared in Redis too)",
    "access log": "on, level INFO (the production default), to a file",
    "usage records": "on: JSON Lines to a local folder, flushed every 5 s (the default)",
    "metrics": "instruments on, exporter off (no Application Insights connection string)",
    "redaction": "off (the bench's systems have no PII policy)",
}


@dataclass
class Options:
    rounds: int
    seconds: int
    warmup: int
    ttfb_samples: int
    out: Path
    client: str
    install: bool
    redis_url: str
    quick: bool
    workers: int


@dataclass
class Setup:
    simulator: Service
    gateways: dict[str, Service]  # the reference too: its CPU and memory are measured alike
    targets: dict[str, Target]


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="times each phase runs (3)")
    parser.add_argument("--seconds", type=int, default=2, help="seconds per phase and round (2)")
    parser.add_argument("--warmup", type=int, help="warm-up seconds per phase, first round (1)")
    parser.add_argument("--ttfb-samples", type=int, help="streamed requests per path (300)")
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--client", choices=("auto", "wrk", "aiohttp"), default="auto")
    parser.add_argument(
        "--no-install",
        action="store_true",
        help="never apt-get install wrk (without it: own client)",
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument(
        "--quick", action="store_true", help="one round of 1 s phases: checks that it runs"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="also run the full path as `tollgate serve --workers N` and report how it scales "
        "against one worker (no pinning then: the workers need every CPU)",
    )
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be 1 or more")
    return Options(
        rounds=1 if args.quick else args.rounds,
        seconds=1 if args.quick else args.seconds,
        warmup=args.warmup if args.warmup is not None else (0 if args.quick else 1),
        ttfb_samples=args.ttfb_samples or (30 if args.quick else 300),
        out=args.out,
        client=args.client,
        install=not args.no_install,
        redis_url=args.redis_url,
        quick=args.quick,
        workers=args.workers,
    )


def label(name: str, workers: int) -> str:
    return LABELS[name].replace("N workers", f"{workers} workers")


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_async(main: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is in requirements-dev.txt
        return asyncio.run(main)
    return uvloop.run(main)


def redis_answers(url: str) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except redis.RedisError:
        return False


def machine() -> dict[str, Any]:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def set_up(
    work: Path,
    redis_url: str | None,
    stack: list[Service],
    workers: int = 1,
    contexts: contextlib.ExitStack | None = None,
) -> Setup:
    sim_key = secrets.token_urlsafe(24)
    simulator = start_simulator(sim_key, work / "simulator.log")
    stack.append(simulator)
    # Names of this run's own, so that nothing this run keeps in Redis (limit counters, the
    # deployment's health) is shared with other runs or with anything else using that Redis.
    run_id = secrets.token_hex(3)
    deployment = f"bench-{run_id}-gpt-4o"
    config = {
        "upstreams": {
            deployment: {
                "type": "azure",
                "endpoint": simulator.url,
                "deployment": "gpt-4o",
                "key_secret": "bench-simulator-key",
            }
        },
        "models": {"gpt-4o": {"upstream": deployment, "price": PRICE}},
    }
    env = {
        "TOLLGATE_REGISTRY": str(work / "systems.json"),
        "TOLLGATE_CONFIG_JSON": json.dumps(config),
        "TOLLGATE_SECRET_BENCH_SIMULATOR_KEY": sim_key,
        "TOLLGATE_PROBE_ENABLED": "false",
        "TOLLGATE_LOG_LEVEL": "INFO",
        # Usage records and the audit log stay in this run's folder, not the repository's.
        "TOLLGATE_USAGE_RECORDS": str(work / "usage"),
        "TOLLGATE_AUDIT_LOG": str(work / "audit"),
    }
    for name in ("TOLLGATE_CONFIG", "TOLLGATE_REDIS_URL", "TOLLGATE_KEYVAULT_URL"):
        os.environ.pop(name, None)
    open_system, limited_system = f"bench-open-{run_id}", f"bench-{run_id}"
    tollgate(env, "systems", "create", open_system, "--models", "*")
    tollgate(env, "systems", "create", limited_system, "--models", "*")
    tollgate(env, "systems", "limits", limited_system, *BENCH_LIMITS)
    open_key = tollgate(env, "keys", "create", "--system", open_system)
    targets = {DIRECT: Target(DIRECT, simulator.url + CHAT_PATH, {"api-key": sim_key})}
    reference = start_reference(simulator.url, work / "reference.log")
    stack.append(reference)
    targets[REFERENCE] = Target(REFERENCE, reference.url + CHAT_PATH, {"api-key": sim_key})
    plain = start_gateway(PLAIN, env, work / "gateway.log")
    stack.append(plain)
    gateways = {REFERENCE: reference, PLAIN: plain}
    targets[PLAIN] = Target(PLAIN, plain.url + CHAT_PATH, {"api-key": open_key})
    if redis_url is not None:
        limited_key = tollgate(env, "keys", "create", "--system", limited_system)
        safety = _content_safety(contexts)
        shared = start_gateway(
            REDIS, {**env, **safety, "TOLLGATE_REDIS_URL": redis_url}, work / "gateway-redis.log"
        )
        stack.append(shared)
        # One process serves both: a system without limits, then one with them.
        gateways[REDIS] = gateways[LIMITS] = shared
        targets[REDIS] = Target(REDIS, shared.url + CHAT_PATH, {"api-key": open_key})
        targets[LIMITS] = Target(LIMITS, shared.url + CHAT_PATH, {"api-key": limited_key})
        paths = (
            (BUDGET, BENCH_BUDGETS, ()),
            (CACHE, (), ("--cache", "on")),
            (GUARD, (), ("--content-policy", BENCH_POLICY)),
            *([(SAFETY, (), ("--content-policy", SAFETY_POLICY))] if safety else []),
        )
        for name, limits, update in paths:
            system = f"bench-{name.removeprefix('gateway_')}-{run_id}"
            tollgate(env, "systems", "create", system, "--models", "*")
            tollgate(env, "systems", "limits", system, *BENCH_LIMITS, *limits)
            if update:
                tollgate(env, "systems", "update", system, *update)
            key = tollgate(env, "keys", "create", "--system", system)
            gateways[name] = shared
            targets[name] = Target(name, shared.url + CHAT_PATH, {"api-key": key})
        if workers > 1:
            log = work / "gateway-workers.log"
            many = start_gateway(WORKERS, {**env, "TOLLGATE_REDIS_URL": redis_url}, log, workers)
            stack.append(many)
            gateways[WORKERS] = many
            targets[WORKERS] = Target(WORKERS, many.url + CHAT_PATH, {"api-key": limited_key})
    return Setup(simulator, gateways, targets)


def _content_safety(contexts: contextlib.ExitStack | None) -> dict[str, str]:
    """The gateway's settings for a Content Safety stand-in served from this process (the
    tests' own, with its managed-identity endpoint), kept up until `contexts` closes."""
    if contexts is None:
        return {}
    from tests.support.content_safety_standin import ContentSafetyStandIn

    standin = contexts.enter_context(ContentSafetyStandIn().in_thread())
    return {**standin.gateway_env(), **standin.credential_env()}


def pin_processes(setup: Setup) -> str:
    """With two CPUs or more: the servers measured (the reference and the gateways) share the
    first, the simulator and the load (this process, wrk, its own client) the rest."""
    if WORKERS in setup.gateways:
        return "none (--workers: the workers, like every other process, may use every CPU)"
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return "none (one CPU): every process shares it"
    served, rest = {cpus[0]}, set(cpus[1:])
    for service in {id(s): s for s in setup.gateways.values()}.values():
        pin(service.pid, served)
    pin(setup.simulator.pid, rest)
    os.sched_setaffinity(0, rest)
    return f"reference and gateways on CPU {cpus[0]}; simulator and load on CPU {sorted(rest)}"


def drive(wrk: str | None, target: Target, mode: str, connections: int, seconds: float) -> Load:
    body = BODIES[mode]
    if wrk is not None:
        return run_wrk(wrk, target, body, connections, seconds)
    return run_async(run_client(target, body, connections, seconds))


def run_phases(opts: Options, wrk: str | None, setup: Setup) -> list[dict[str, Any]]:
    """Every phase once per round, alternating paths within each (mode, connections)."""
    order = [(m, c, name) for m in BODIES for c in CONNECTIONS for name in setup.targets]
    runs: dict[tuple[str, int, str], list[tuple[Load, float | None]]] = {k: [] for k in order}
    step, steps = 0, opts.rounds * len(order)
    for round_no in range(opts.rounds):
        for mode, connections, name in order:
            step += 1
            target = setup.targets[name]
            if opts.warmup > 0 and round_no == 0:
                drive(wrk, target, mode, connections, opts.warmup)
            service = setup.gateways.get(name)
            cpu_before = cpu_seconds(service.pid) if service else 0.0
            load = drive(wrk, target, mode, connections, opts.seconds)
            cpu = cpu_seconds(service.pid) - cpu_before if service else None
            if service is not None and service.process.poll() is not None:
                raise RuntimeError(f"{name} died:\n{service.log_tail()}")
            runs[(mode, connections, name)].append((load, cpu))
            cpu_text = (
                f", {cpu * 1000 / load.requests:.3f} ms CPU/req" if cpu and load.requests else ""
            )
            progress(
                f"[{step}/{steps}] {mode:6} c{connections:<3} {LABELS[name]:26} "
                f"{load.rps:8.0f} req/s  p50 {load.p50_ms:.3f} ms  p99 {load.p99_ms:.3f} ms  "
                f"errors {load.error_count}{cpu_text}"
            )
    return [phase_record(*key, loads) for key, loads in runs.items()]


def phase_record(
    mode: str, connections: int, path: str, rounds: list[tuple[Load, float | None]]
) -> dict[str, Any]:
    """One phase over its rounds: counts and CPU summed; each percentile the median of the
    rounds' percentiles, so that one disturbed round does not decide a figure."""
    loads = [load for load, _ in rounds]
    requests = sum(load.requests for load in loads)
    duration = sum(load.duration_s for load in loads)
    errors: dict[str, int] = {}
    for load in loads:
        for kind, n in load.errors.items():
            errors[kind] = errors.get(kind, 0) + n
    cpu = [c for _, c in rounds if c is not None]
    per_request = sum(cpu) * 1000 / requests if cpu and requests else None
    return {
        "mode": mode,
        "stream": mode == "stream",
        "connections": connections,
        "path": path,
        "requests": requests,
        "duration_s": round(duration, 3),
        "rps": round(requests / duration, 1) if duration else 0.0,
        "p50_ms": statistics.median(load.p50_ms for load in loads),
        "p90_ms": statistics.median(load.p90_ms for load in loads),
        "p99_ms": statistics.median(load.p99_ms for load in loads),
        "errors": errors,
        "error_count": sum(errors.values()),
        "cpu_ms_per_request": per_request,
        "rounds": [_round(load) for load in loads],
    }


def _round(load: Load) -> dict[str, Any]:
    return {
        "requests": load.requests,
        "rps": round(load.rps, 1),
        "p50_ms": load.p50_ms,
        "p90_ms": load.p90_ms,
        "p99_ms": load.p99_ms,
        "errors": load.error_count,
    }


def measure_ttfb(opts: Options, setup: Setup) -> dict[str, Any]:
    targets = list(setup.targets.values())
    progress(f"time to first byte: {opts.ttfb_samples} streamed requests per path, alternating")
    warmup = min(20, opts.ttfb_samples)
    timings = run_async(time_first_chunks(targets, BODIES["stream"], opts.ttfb_samples, warmup))
    return {
        "samples": opts.ttfb_samples,
        "connections": 1,
        "paths": {name: spread(values) for name, values in timings.items()},
    }


def spread(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": quantile(values, 0.5),
        "p90_ms": quantile(values, 0.9),
        "p99_ms": quantile(values, 0.99),
    }


def choose_client(opts: Options) -> tuple[str | None, str]:
    if opts.client == "aiohttp":
        return None, "aiohttp (own client, in the bench process)"
    wrk = ensure_wrk(opts.install)
    if wrk is None:
        if opts.client == "wrk":
            raise RuntimeError("wrk is not installed and could not be installed")
        return None, "aiohttp (own client, in the bench process; wrk not installed)"
    return wrk, f"{wrk_version(wrk)} (1 thread, its own process)"


def resolve_redis(opts: Options, work: Path) -> tuple[str | None, str, PrivateRedis | None]:
    if redis_answers(opts.redis_url):
        return opts.redis_url, opts.redis_url, None
    if shutil.which("redis-server"):
        private = PrivateRedis(work)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if redis_answers(private.url):
                note = f"{private.url} (private: {opts.redis_url} did not answer)"
                return private.url, note, private
            time.sleep(0.05)
        private.stop()
    skipped = f"none ({opts.redis_url} did not answer, no redis-server started): no Redis runs"
    return None, skipped, None


CLI_COMMAND = ("systems", "list")


def cli_startup_ms(runs: int = 7) -> dict[str, float]:
    """How long a registry command takes from exec to exit, on an empty local registry."""
    times: list[float] = []
    with tempfile.TemporaryDirectory(prefix="tollgate-cli-") as tmp:
        env = {**os.environ, "TOLLGATE_REGISTRY": str(Path(tmp) / "systems.json")}
        for _ in range(runs):
            begun = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "shared.cli", *CLI_COMMAND],
                env=env,
                capture_output=True,
                timeout=60,
                check=False,
            )
            times.append((time.perf_counter() - begun) * 1000)
    return {"runs": runs, "median_ms": statistics.median(times), "min_ms": min(times)}


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    started = time.monotonic()
    host = machine()
    wrk, client = choose_client(opts)
    stack: list[Service] = []
    private: PrivateRedis | None = None
    with (
        tempfile.TemporaryDirectory(prefix="tollgate-bench-") as tmp,
        contextlib.ExitStack() as contexts,
    ):
        work = Path(tmp)
        try:
            redis_url, redis_note, private = resolve_redis(opts, work)
            progress(f"load: {client}; Redis: {redis_note}")
            setup = set_up(work, redis_url, stack, opts.workers, contexts)
            pinning = pin_processes(setup)
            progress(f"pinning: {pinning}")
            run_async(warm_up(list(setup.targets.values()), list(BODIES.values()), 50))
            phases = run_phases(opts, wrk, setup)
            ttfb = measure_ttfb(opts, setup)
            rss = {name: peak_rss_mb(service.pid) for name, service in setup.gateways.items()}
        finally:
            for service in reversed(stack):
                service.stop()
            if private is not None:
                private.stop()
    results = report.build(
        machine={**host, "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
        settings={
            "rounds": opts.rounds,
            "seconds_per_phase_and_round": opts.seconds,
            "warmup_seconds_per_phase": opts.warmup,
            "connections": list(CONNECTIONS),
            "ttfb_samples": opts.ttfb_samples,
            "quick": opts.quick,
            "load_client": client,
            "upstream": "built-in simulator, zero latency, 16 completion tokens",
            "gateway": "tollgate serve (uvicorn), one worker process",
            "workers": opts.workers,
            "reference": "bench/reference_relay.py: aiohttp alone, streams chunk by chunk",
            "pinning": pinning,
            "redis": redis_note,
            "request": f"POST {CHAT_PATH}",
            "features": FEATURES,
        },
        labels={name: label(name, opts.workers) for name in setup.targets},
        phases=phases,
        ttfb=ttfb,
        peak_rss_mb=rss,
    )
    results["cli_startup_ms"] = cli_startup_ms()
    results["wall_seconds"] = round(time.monotonic() - started, 1)
    opts.out.mkdir(parents=True, exist_ok=True)
    (opts.out / "bench.json").write_text(json.dumps(results, indent=2) + "\n")
    from bench.chart import draw

    draw(results, opts.out / "bench.png")
    print(report.table(results))
    startup = results["cli_startup_ms"]
    print(
        f"\nCLI start-up (`tollgate {' '.join(CLI_COMMAND)}`, {startup['runs']} runs): "
        f"median {startup['median_ms']:.0f} ms, fastest {startup['min_ms']:.0f} ms"
    )
    print(f"\nWrote {opts.out / 'bench.json'} and {opts.out / 'bench.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
