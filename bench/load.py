"""Drive load at one target: wrk (from Debian) when present, else an aiohttp client of our own.

Either way the result is the same: completed requests, errors by kind, the measured duration and
the latency distribution (ms), each request timed from sending it to the end of its response.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from shared.report.stats import quantile

WRK_SCRIPT = Path(__file__).with_name("wrk_report.lua")
WRK_MARK = "BENCH_JSON "


@dataclass(frozen=True)
class Target:
    """One place to send the request: the upstream directly, or a gateway."""

    name: str
    url: str
    headers: dict[str, str]


@dataclass
class Load:
    requests: int
    duration_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0


def ensure_wrk(install: bool) -> str | None:
    """wrk's path; installed with apt-get first when missing, allowed and possible (as root)."""
    found = shutil.which("wrk")
    if found or not install or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install_cmd = ["apt-get", "install", "-y", "-q", "wrk"]
    for attempt in ([], [["apt-get", "update", "-q"]]):
        for cmd in [*attempt, install_cmd]:
            subprocess.run(cmd, env=env, capture_output=True, timeout=180, check=False)
        if found := shutil.which("wrk"):
            return found
    return None


def wrk_version(wrk: str) -> str:
    # wrk prints its version with its usage text, to stdout, and exits non-zero.
    result = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False, timeout=10)
    first = (result.stdout or result.stderr).splitlines()
    return first[0].split(" Copyright")[0] if first else "wrk"


def run_wrk(wrk: str, target: Target, body: bytes, connections: int, seconds: float) -> Load:
    args = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s"]
    for name, value in target.headers.items():
        args += ["-H", f"{name}: {value}"]
    args += ["-s", str(WRK_SCRIPT), target.url]
    env = {**os.environ, "BENCH_BODY": body.decode()}
    result = subprocess.run(
        args, env=env, capture_output=True, text=True, timeout=seconds + 30, check=False
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith(WRK_MARK)]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({result.returncode}): {result.stdout}{result.stderr}")
    data = json.loads(lines[-1][len(WRK_MARK) :])
    latency = data["latency_us"]
    return Load(
        requests=int(data["requests"]),
        duration_s=data["duration_us"] / 1e6,
        p50_ms=latency["p50"] / 1000,
        p90_ms=latency["p90"] / 1000,
        p99_ms=latency["p99"] / 1000,
        errors={kind: int(n) for kind, n in data["errors"].items() if n},
    )


async def run_client(target: Target, body: bytes, connections: int, seconds: float) -> Load:
    """A closed loop of `connections` workers, each sending the next request when one ends."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    headers = {**target.headers, "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=10)

    async def worker(session: aiohttp.ClientSession, deadline: float) -> None:
        while (started := time.perf_counter()) < deadline:
            try:
                async with session.post(target.url, data=body, headers=headers) as resp:
                    await resp.read()
                    failed = "status" if resp.status >= 400 else ""
            except (aiohttp.ClientError, TimeoutError):
                failed = "read"
            if failed:
                errors[failed] = errors.get(failed, 0) + 1
            else:
                latencies.append((time.perf_counter() - started) * 1000)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        began = time.perf_counter()
        deadline = began + seconds
        await asyncio.gather(*(worker(session, deadline) for _ in range(connections)))
        duration = time.perf_counter() - began
    if not latencies:
        return Load(sum(errors.values()), duration, 0.0, 0.0, 0.0, errors)
    return Load(
        requests=len(latencies) + sum(errors.values()),
        duration_s=duration,
        p50_ms=quantile(latencies, 0.5),
        p90_ms=quantile(latencies, 0.9),
        p99_ms=quantile(latencies, 0.99),
        errors=errors,
    )


async def first_chunk_ms(session: aiohttp.ClientSession, target: Target, body: bytes) -> float:
    """Time from sending a streamed request to its first body chunk; the rest is read too."""
    headers = {**target.headers, "Content-Type": "application/json"}
    started = time.perf_counter()
    async with session.post(target.url, data=body, headers=headers) as resp:
        if resp.status != 200:
            raise RuntimeError(f"{target.name} answered {resp.status}")
        if not await resp.content.readany():
            raise RuntimeError(f"{target.name} sent an empty stream")
        elapsed = (time.perf_counter() - started) * 1000
        await resp.read()
    return elapsed


async def time_first_chunks(
    targets: list[Target], body: bytes, samples: int, warmup: int
) -> dict[str, list[float]]:
    """One connection per target, alternating target by target, request by request."""
    timings: dict[str, list[float]] = {t.name: [] for t in targets}
    sessions = [aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) for _ in targets]
    try:
        pairs = list(zip(targets, sessions, strict=True))
        for i in range(warmup + samples):
            # Rotate which target goes first, so none always follows the same one.
            shift = i % len(pairs)
            for target, session in pairs[shift:] + pairs[:shift]:
                elapsed = await first_chunk_ms(session, target, body)
                if i >= warmup:
                    timings[target.name].append(elapsed)
    finally:
        for session in sessions:
            await session.close()
    return timings


async def warm_up(targets: list[Target], bodies: list[bytes], requests: int) -> None:
    """A few requests of each kind first, so one-off costs (first connections, loading a
    tokenizer) do not land in the first measured phase."""
    async with aiohttp.ClientSession() as session:
        for target in targets:
            headers = {**target.headers, "Content-Type": "application/json"}
            for body in bodies:
                for _ in range(requests):
                    async with session.post(target.url, data=body, headers=headers) as resp:
                        text = await resp.text()
                        if resp.status != 200:
                            raise RuntimeError(f"{target.name} answered {resp.status}: {text}")
