"""When Redis goes away: fail-open admits and counts in each instance; fail-closed refuses.
When it comes back, the shared limits resume. Uses a private redis-server it can stop."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.conftest import SIM_KEY, Live, new_system
from tests.support.processes import Service, start_gateway
from tests.support.redis_server import PrivateRedis

CHAT: Any = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


@pytest.fixture(scope="module")
def outage(
    live: Live, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[PrivateRedis, Service, Service, str]]:
    work = tmp_path_factory.mktemp("outage")
    private = PrivateRedis(work)
    private.start()
    env = {
        "TOLLGATE_REGISTRY": str(work / "systems.json"),
        "TOLLGATE_SIMULATOR_URL": live.simulator.url,
        "TOLLGATE_SECRET_SIMULATOR_KEY": SIM_KEY,
        "TOLLGATE_REDIS_URL": private.url,
    }
    key = new_system(env, "app", limits={"rpm": 5})
    fail_open = start_gateway({**env, "TOLLGATE_REDIS_FAILURE_POLICY": "open"}, work / "open.log")
    fail_closed = start_gateway(
        {**env, "TOLLGATE_REDIS_FAILURE_POLICY": "closed"}, work / "closed.log"
    )
    try:
        yield private, fail_open, fail_closed, key
    finally:
        fail_open.stop()
        fail_closed.stop()
        private.stop()


def statuses(gateway: Service, key: str, n: int) -> list[int]:
    url = f"{gateway.url}/gateway/chat/completions/gpt-4o"
    return [
        requests.post(url, headers={"api-key": key}, json=CHAT, timeout=30).status_code
        for _ in range(n)
    ]


def test_policies_through_an_outage_and_back(
    outage: tuple[PrivateRedis, Service, Service, str],
) -> None:
    private, fail_open, fail_closed, key = outage
    # Shared limit: five across both instances.
    assert statuses(fail_open, key, 3) + statuses(fail_closed, key, 3) == [200] * 5 + [429]

    private.stop()
    down = requests.post(
        f"{fail_closed.url}/gateway/chat/completions/gpt-4o",
        headers={"api-key": key},
        json=CHAT,
        timeout=30,
    )
    assert down.status_code == 503 and down.json()["error"]["code"] == "limits_unavailable"
    assert down.headers["retry-after"] == "1"
    # Fail-open: admitted, but still limited by this instance's own count.
    assert statuses(fail_open, key, 6) == [200] * 5 + [429]
    assert "LIMITS STORE UNREACHABLE" in fail_open.log_text()

    private.start()  # an empty Redis: the shared count starts again
    deadline = time.monotonic() + 10
    while statuses(fail_closed, key, 1) != [200] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert statuses(fail_open, key, 4) + statuses(fail_closed, key, 2) == [200] * 4 + [429] * 2
    assert private.client().keys("tg:{app}:s:rpm")
