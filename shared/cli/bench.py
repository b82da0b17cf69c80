"""`tollgate bench`: the seed's benchmark as a command, writing the probe's CSV."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import aiohttp

from shared.auth.secrets import SecretNotFound, SecretProviderError
from shared.auth.upstream_credentials import secret_provider_from
from shared.cli.errors import CommandError
from shared.probe.latency_csv import LatencyRow, to_csv
from shared.probe.run import schedule, targets, time_requests
from shared.report.stats import Overhead, summarise
from shared.routes import Operation
from shared.settings import ProbeSettings, Settings
from shared.upstream.config import load_config

SEED_MODELS = "gpt-35-turbo-0613,gpt-4-turbo,gpt-4o"
STREAMS = {"no": (False,), "yes": (True,), "both": (False, True)}


def add_commands(commands: Any) -> None:
    bench = commands.add_parser(
        "bench", help="time chat requests directly and through the gateway; write a CSV"
    )
    bench.add_argument("--models", default=SEED_MODELS, help=f"default: {SEED_MODELS}")
    bench.add_argument("--runs", type=int, default=50, help="requests per model and path")
    bench.add_argument("--paths", default="direct,gateway", help="direct, gateway or both")
    bench.add_argument(
        "--stream", choices=sorted(STREAMS), default="no", help="stream the answers (default no)"
    )
    bench.add_argument("--concurrency", type=int, default=1, help="1: sequential, as the seed")
    bench.add_argument("--gateway-url", help="default: TOLLGATE_PROBE_GATEWAY_URL")
    bench.add_argument(
        "--key-env",
        default="TOLLGATE_BENCH_KEY",
        help="environment variable holding the gateway key (default TOLLGATE_BENCH_KEY; "
        "else the probe's key secret)",
    )
    bench.add_argument("--out", required=True, type=Path, help="the CSV file to write")
    bench.set_defaults(handler=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    if not set(paths) <= {"direct", "gateway"} or not paths:
        raise CommandError("--paths takes direct, gateway or direct,gateway")
    if args.runs < 1 or args.concurrency < 1:
        raise CommandError("--runs and --concurrency must be at least 1")
    rows = asyncio.run(_bench(args, models, paths))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(to_csv(rows), encoding="utf-8")
    failed = sum(not r.ok for r in rows)
    print(f"{len(rows)} requests, {failed} failed; written to {args.out}", file=sys.stderr)
    for overhead in summarise(rows).overheads:
        print(overhead_line(overhead))
    return 0 if rows else 1


def overhead_line(o: Overhead) -> str:
    """The gateway's overhead as `make bench` and `tollgate report latency` give it: difference
    and ratio to direct."""
    mode = "stream" if o.stream else "whole"
    return (
        f"{o.model} {mode}: gateway overhead {o.total_p50:+.1f} ms at p50 "
        f"({o.total_p50_ratio:.2f}x direct), {o.total_p99:+.1f} ms at p99; first byte "
        f"{o.ttfb_p50:+.1f} ms ({o.ttfb_p50_ratio:.2f}x)"
    )


async def _bench(args: argparse.Namespace, models: list[str], paths: list[str]) -> list[LatencyRow]:
    settings, probe = Settings.from_env(), ProbeSettings.from_env()
    config = load_config(settings)
    unknown = [
        m
        for m in models
        if m not in config.models or config.models[m].operation is not Operation.CHAT
    ]
    if unknown:
        raise CommandError(f"not chat models in the gateway configuration: {', '.join(unknown)}")
    provider = secret_provider_from(settings)
    gateway_key = os.environ.get(args.key_env) or _kept_demo_key(settings)
    secrets = _KeyFromEnv(provider, probe.key_secret, gateway_key)
    try:
        plan = await targets(
            config, models, paths, args.gateway_url or probe.gateway_url, secrets, probe.key_secret
        )
    except (SecretNotFound, SecretProviderError) as exc:
        raise CommandError(_missing(exc, probe.key_secret, args.key_env)) from None
    finally:
        await provider.aclose()
    jobs = schedule(plan, args.runs, STREAMS[args.stream])
    timeout = aiohttp.ClientTimeout(total=300, connect=settings.upstream_connect_timeout)
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        return await time_requests(session, jobs, args.concurrency, _progress(len(jobs)))


def _kept_demo_key(settings: Settings) -> str:
    """The demo key `tollgate run` keeps beside a local registry, to time `make run`."""
    kept = Path(settings.registry).parent / "demo-key"
    try:
        return kept.read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def _missing(exc: Exception, gateway_secret: str, key_env: str) -> str:
    """Which key is missing, and where to put it: the gateway's, or an upstream's."""
    if f"'{gateway_secret}'" in str(exc):
        return f"the gateway key is missing: set {key_env} (or run `make run` first)"
    return f"an upstream key is missing for the direct path: {exc}"


class _KeyFromEnv:
    """The secret provider, except that the gateway key may come from the environment."""

    def __init__(self, provider: Any, gateway_secret: str, gateway_key: str | None):
        self._provider, self._secret, self._key = provider, gateway_secret, gateway_key

    async def get(self, name: str) -> str:
        if name == self._secret and self._key:
            return self._key
        value: str = await self._provider.get(name)
        return value

    async def aclose(self) -> None:
        await self._provider.aclose()


def _progress(total: int) -> Any:
    def show(done: int, row: LatencyRow) -> None:
        mode = "stream" if row.stream else "whole"
        outcome = "ok" if row.ok else f"FAILED {row.error}"
        print(
            f"[{done:>{len(str(total))}}/{total}] {row.model} {row.path} {mode} "
            f"{row.total_ms:.1f} ms {outcome}",
            file=sys.stderr,
        )

    return show
