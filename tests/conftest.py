"""Session fixtures: a live simulator and a live gateway, each a real process on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.azurite import azurite
from tests.support.processes import Service, start_gateway, start_simulator, tollgate

SIM_KEY = "upstream-secret-sim-key-0123456789"
SEED_SYSTEM = "0003R3"
SEED_MODELS = (
    "gpt-4o,gpt-4-turbo,gpt-35-turbo,gpt-35-turbo-16k,gpt-35-turbo-0613,text-embedding-3-small,"
    "gpt-35-turbo-instruct,DeepSeek-R1,Cohere-embed-v3-multilingual,dall-e-3,gpt-image-1,whisper-1,"
    "tts-1"
)
LIMITED_SYSTEM = "limited"
MAX_BODY = 65536


@dataclass
class Live:
    gateway: Service
    simulator: Service
    env: dict[str, str]
    seed_key: str
    limited_key: str

    @property
    def url(self) -> str:
        return self.gateway.url

    def sim(self, method: str, path: str, json: Any = None) -> requests.Response:
        resp = requests.request(method, f"{self.simulator.url}/_sim/{path}", json=json, timeout=5)
        resp.raise_for_status()
        return resp

    def sim_requests(self) -> list[dict[str, Any]]:
        data = self.sim("GET", "requests").json()
        return list(data["requests"] if isinstance(data, dict) else data)


def create_key(env: dict[str, str], system: str) -> str:
    result = tollgate("keys", "create", "--system", system, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def new_system(
    env: dict[str, str], system: str, models: str = "*", limits: Mapping[str, float] | None = None
) -> str:
    """Register `system` (with these limits, e.g. rpm=60) through the CLI; return a new key."""
    result = tollgate("systems", "create", system, "--models", models, env=env)
    assert result.returncode == 0, result.stderr
    if limits:
        flags = [f"--{name.replace('_', '-')}={value}" for name, value in limits.items()]
        result = tollgate("systems", "limits", system, *flags, env=env)
        assert result.returncode == 0, result.stderr
    return create_key(env, system)


@pytest.fixture(scope="session")
def azurite_connection(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A connection string for Azurite (from npm), in memory, for the whole session."""
    with azurite(tmp_path_factory.mktemp("azurite") / "azurite.log") as connection:
        yield connection


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    work = tmp_path_factory.mktemp("live")
    simulator = start_simulator(SIM_KEY, work / "simulator.log")
    env = {
        "TOLLGATE_REGISTRY": str(work / "systems.json"),
        "TOLLGATE_SIMULATOR_URL": simulator.url,
        "TOLLGATE_SECRET_SIMULATOR_KEY": SIM_KEY,
        "TOLLGATE_REGISTRY_REFRESH_SECONDS": "0.5",
        "TOLLGATE_MAX_BODY_BYTES": str(MAX_BODY),
        "TOLLGATE_LOG_LEVEL": "DEBUG",
    }
    for system, models in ((SEED_SYSTEM, SEED_MODELS), (LIMITED_SYSTEM, "gpt-35-turbo")):
        result = tollgate("systems", "create", system, "--models", models, env=env)
        assert result.returncode == 0, result.stderr
    seed_key, limited_key = create_key(env, SEED_SYSTEM), create_key(env, LIMITED_SYSTEM)
    gateway = start_gateway(env, Path(work / "gateway.log"))
    try:
        yield Live(gateway, simulator, env, seed_key, limited_key)
    finally:
        gateway.stop()
        simulator.stop()
