"""An in-process simulator on 127.0.0.1 and a client of its `/_sim/` control API, for the
simulator's own tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import aiohttp
import openai
import pytest

from shared.simulator.app import start_simulator
from shared.simulator.config import SimulatorConfig

KEY = "sim-key"
API_VERSION = "2024-10-21"


class SimControl:
    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self.url = url
        self.http = session

    def client(self, prefix: str = "/v1") -> openai.AsyncOpenAI:
        """The official SDK on the simulator, OpenAI's style (or Azure v1's, by `prefix`)."""
        return openai.AsyncOpenAI(
            base_url=self.url + prefix, api_key=KEY, max_retries=0, timeout=10
        )

    def azure(self) -> openai.AsyncAzureOpenAI:
        return openai.AsyncAzureOpenAI(
            azure_endpoint=self.url, api_version=API_VERSION, api_key=KEY, max_retries=0, timeout=10
        )

    async def control(self, method: str, path: str, **body: Any) -> tuple[int, Any]:
        async with self.http.request(method, f"{self.url}/_sim/{path}", json=body or None) as r:
            return r.status, await r.json()

    async def set_config(self, **changes: Any) -> Any:
        status, body = await self.control("POST", "config", **changes)
        assert status == 200, body
        return body

    async def fault(self, **fault: Any) -> None:
        status, body = await self.control("POST", "faults", **fault)
        assert status == 200, body

    async def requests(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = (await self.control("GET", "requests"))[1]["requests"]
        return records

    async def reset(self) -> None:
        """No faults, no request log, the default configuration (with the tests' key)."""
        await self.control("DELETE", "faults")
        await self.control("DELETE", "requests")
        await self.set_config(**{**SimulatorConfig().to_json(), "api_keys": [KEY]})


Control = TypeVar("Control", bound=SimControl)


@asynccontextmanager
async def running_simulator(kind: type[Control]) -> AsyncIterator[Control]:
    runner, url = await start_simulator(SimulatorConfig())
    try:
        async with aiohttp.ClientSession() as session:
            yield kind(url, session)
    finally:
        await runner.cleanup()


def simulator_fixtures(kind: type[Control]) -> tuple[Any, Any]:
    """A module's `sim_server` (one simulator for the module) and `sim` (that simulator, reset
    after each test) fixtures, for its own SimControl subclass."""

    @pytest.fixture(scope="module")
    async def sim_server() -> AsyncIterator[Control]:
        async with running_simulator(kind) as running:
            yield running

    @pytest.fixture
    async def sim(sim_server: Control) -> AsyncIterator[Control]:
        yield sim_server
        await sim_server.reset()

    return sim_server, sim
