"""PII redaction on a live gateway: masked before the upstream sees it, or refused by kind."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.conftest import SIM_KEY, Live, create_key
from tests.support.processes import Service, start_gateway, tollgate

SECRET_TEXT = "Mail me at wang.da@example.com.tw or call 0912-345-678; ID A123456789."


@pytest.fixture(scope="module")
def rig(
    live: Live, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Service, dict[str, str]]]:
    work = tmp_path_factory.mktemp("pii")
    env = {
        "TOLLGATE_REGISTRY": str(work / "systems.json"),
        "TOLLGATE_SIMULATOR_URL": live.simulator.url,
        "TOLLGATE_SECRET_SIMULATOR_KEY": SIM_KEY,
    }
    keys = {}
    for system, mode in (("masked", "mask"), ("strict", "reject")):
        assert tollgate("systems", "create", system, "--models", "*", env=env).returncode == 0
        assert tollgate("systems", "update", system, "--redaction", mode, env=env).returncode == 0
        keys[system] = create_key(env, system)
    gateway = start_gateway(env, work / "gateway.log")
    try:
        yield gateway, keys
    finally:
        gateway.stop()


def post(
    gateway: Service, key: str, body: dict[str, Any], stream: bool = False
) -> requests.Response:
    url = f"{gateway.url}/gateway/chat/completions/gpt-4o"
    return requests.post(url, headers={"api-key": key}, json={**body, "stream": stream}, timeout=30)


@pytest.mark.parametrize("stream", [False, True])
def test_mask_mode_hides_pii_from_the_upstream(live: Live, rig: Any, stream: bool) -> None:
    gateway, keys = rig
    live.sim("DELETE", "requests")
    body = {"messages": [{"role": "user", "content": SECRET_TEXT}]}
    response = post(gateway, keys["masked"], body, stream)
    assert response.status_code == 200
    (seen,) = live.sim_requests()
    sent = seen["body"]["messages"][0]["content"]
    assert "[EMAIL]" in sent and "[PHONE]" in sent and "[TW_ID]" in sent
    for value in ("wang.da@example.com.tw", "0912-345-678", "A123456789"):
        assert value not in str(seen) and value not in response.text
    if stream:
        assert response.text.rstrip().split("\n\n")[-2] == "data: [DONE]"


def test_reject_mode_refuses_naming_kinds_never_values(live: Live, rig: Any) -> None:
    gateway, keys = rig
    live.sim("DELETE", "requests")
    response = post(
        gateway, keys["strict"], {"messages": [{"role": "user", "content": SECRET_TEXT}]}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "pii_detected"
    assert "email" in error["message"] and "phone" in error["message"]
    assert "wang.da" not in response.text and "0912" not in response.text
    assert live.sim_requests() == []  # nothing left for the upstream
    clean = post(gateway, keys["strict"], {"messages": [{"role": "user", "content": "hello"}]})
    assert clean.status_code == 200
