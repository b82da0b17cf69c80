"""A private gateway in front of a simulator, for tests that change its settings or fault it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tests.conftest import SIM_KEY, new_system
from tests.support.processes import Service, start_gateway, start_simulator

Record = dict[str, Any]


@dataclass
class Rig:
    gateway: Service
    simulator: Service
    key: str  # the gateway key of the rig's one system
    work: Path

    def fault(self, **fault: Any) -> None:
        url = f"{self.simulator.url}/_sim/faults"
        requests.post(url, json=fault, timeout=5).raise_for_status()

    def chat(self, model: str = "gpt-4o", **extra: Any) -> requests.Response:
        url = f"{self.gateway.url}/gateway/chat/completions/{model}"
        body = {"messages": [{"role": "user", "content": "hi"}], **extra}
        return requests.post(url, headers={"api-key": self.key}, json=body, timeout=30)

    def records(self) -> list[Record]:
        """The gateway's usage records so far."""
        paths = (self.work / "usage").rglob("*.jsonl")
        return [json.loads(line) for path in paths for line in path.read_text().splitlines()]

    def wait_for_record(self, matches: Callable[[Record], bool]) -> Record:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            found = [record for record in self.records() if matches(record)]
            if found:
                return found[0]
            time.sleep(0.1)
        raise AssertionError("no such usage record")


def priced_config(
    simulator_url: str, price: dict[str, float], deployment: str = "east", **extra: Any
) -> dict[str, Any]:
    """A configuration of one Azure deployment of gpt-4o on the simulator, at `price`."""
    upstream = {
        "type": "azure",
        "endpoint": simulator_url,
        "deployment": "gpt-4o",
        "key_secret": "simulator-key",
    }
    return {
        "upstreams": {deployment: upstream},
        "models": {"gpt-4o": {"upstream": deployment, "price": price}},
        **extra,
    }


@contextmanager
def gateway_rig(
    work: Path,
    settings: dict[str, str],
    *,
    upstream_key: str = SIM_KEY,
    simulator: Service | None = None,
) -> Iterator[Rig]:
    """A gateway with these settings and one system; its own simulator unless one is given."""
    own = simulator is None
    upstream = simulator or start_simulator(upstream_key, work / "simulator.log")
    env = {
        "TOLLGATE_REGISTRY": str(work / "systems.json"),
        "TOLLGATE_USAGE_RECORDS": str(work / "usage"),
        "TOLLGATE_USAGE_FLUSH_SECONDS": "0.1",
        "TOLLGATE_SIMULATOR_URL": upstream.url,
        "TOLLGATE_SECRET_SIMULATOR_KEY": upstream_key,
        **settings,
    }
    key = new_system(env, "app")
    gateway = start_gateway(env, work / "gateway.log")
    try:
        yield Rig(gateway, upstream, key, work)
    finally:
        gateway.stop()
        if own:
            upstream.stop()
