"""Gateway processes sharing one real Redis (127.0.0.1:6379) in front of one simulator."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import redis
import requests

from tests.conftest import SIM_KEY, new_system
from tests.support.processes import Service, start_gateway, start_simulator

REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass
class Cluster:
    gateways: list[Service]
    simulator: Service
    env: dict[str, str]
    work: Path

    def system(self, **limits: float) -> tuple[str, str]:
        """A fresh system with these limits and a key, once every gateway knows it."""
        system = f"lim-{uuid.uuid4().hex[:8]}"
        key = new_system(self.env, system, limits=limits)
        for gateway in self.gateways:
            wait_until_known(gateway.url, key)
        return system, key

    def sim_config(self, **config: Any) -> None:
        url = f"{self.simulator.url}/_sim/config"
        requests.post(url, json=config, timeout=5).raise_for_status()


def wait_until_known(url: str, key: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if requests.get(f"{url}/v1/models", headers={"api-key": key}, timeout=5).status_code == 200:
            return
        time.sleep(0.1)
    raise AssertionError("the gateways never saw the new system")


@contextmanager
def cluster_of(
    work: Path,
    count: int,
    settings: dict[str, str] | Callable[[str], dict[str, str]] | None = None,
) -> Iterator[Cluster]:
    """`settings` may be made from the simulator's URL (a configuration naming it)."""
    redis.Redis.from_url(REDIS_URL).ping()  # no Redis is a failure here, never a skip
    simulator = start_simulator(SIM_KEY, work / "simulator.log")
    if callable(settings):
        settings = settings(simulator.url)
    env = {
        "TOLLGATE_REGISTRY": str(work / "systems.json"),
        "TOLLGATE_SIMULATOR_URL": simulator.url,
        "TOLLGATE_SECRET_SIMULATOR_KEY": SIM_KEY,
        "TOLLGATE_REGISTRY_REFRESH_SECONDS": "0.3",
        "TOLLGATE_REDIS_URL": REDIS_URL,
        **(settings or {}),
    }
    gateways = [start_gateway(env, Path(work / f"gateway{i}.log")) for i in range(count)]
    try:
        yield Cluster(gateways, simulator, env, work)
    finally:
        for gateway in gateways:
            gateway.stop()
        simulator.stop()


async def post(
    session: aiohttp.ClientSession, url: str, key: str, path: str, body: dict[str, Any]
) -> tuple[int, Any, bytes]:
    async with session.post(f"{url}{path}", headers={"api-key": key}, json=body) as resp:
        return resp.status, resp.headers.copy(), await resp.read()  # case-insensitive


async def spread(cluster: Cluster, key: str, n: int, path: str, body: dict[str, Any]) -> list[Any]:
    """n calls at once, dealt round-robin to the cluster's gateways."""
    timeout = aiohttp.ClientTimeout(total=60)
    count = len(cluster.gateways)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as s:
        calls = [post(s, cluster.gateways[i % count].url, key, path, body) for i in range(n)]
        return list(await asyncio.gather(*calls))


def day_used(system: str) -> int:
    """The system's daily token quota counter, as the limits hold it."""
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"tg:{{{system}}}:s:day:*"))
    assert len(keys) == 1
    return int(client.get(keys[0]) or 0)


def tpm_used(system: str) -> int:
    return int(redis.Redis.from_url(REDIS_URL).get(f"tg:{{{system}}}:s:tpm:sum") or 0)
