"""Entra ID sign-in to Redis: a live gateway authenticates as its managed identity, with a token
from the real ManagedIdentityCredential (local identity endpoint) as the password."""

from __future__ import annotations

from pathlib import Path

import requests

from tests.conftest import SIM_KEY, Live, new_system
from tests.support.keyvault_standin import KeyVaultStandIn
from tests.support.processes import start_gateway
from tests.support.redis_server import PrivateRedis

OBJECT_ID = "3f1e5b1c-0000-4000-8000-0000000000aa"
CLIENT_ID = "9d2b4a77-0000-4000-8000-0000000000bb"


def test_gateway_signs_in_to_redis_as_its_identity(live: Live, tmp_path: Path) -> None:
    users = (
        "user default off",
        "user admin on >admin-pw ~* &* +@all",
        f"user {OBJECT_ID} on nopass ~tg:* &* +@all",
    )
    private = PrivateRedis(tmp_path, users, admin=("admin", "admin-pw"))
    private.start()
    env = {
        "TOLLGATE_REGISTRY": str(tmp_path / "systems.json"),
        "TOLLGATE_SIMULATOR_URL": live.simulator.url,
        "TOLLGATE_SECRET_SIMULATOR_KEY": SIM_KEY,
        "TOLLGATE_REDIS_URL": private.url,
        "TOLLGATE_REDIS_AUTH": "entra",
        "TOLLGATE_REDIS_USERNAME": OBJECT_ID,
        "TOLLGATE_REDIS_FAILURE_POLICY": "closed",  # a failed sign-in would show as 503s
        "AZURE_CLIENT_ID": CLIENT_ID,
    }
    key = new_system(env, "app", limits={"rpm": 3})
    try:
        with KeyVaultStandIn().in_thread() as identity:
            gateway = start_gateway({**env, **identity.credential_env()}, tmp_path / "gw.log")
            try:
                url = f"{gateway.url}/gateway/chat/completions/gpt-4o"
                body = {"messages": [{"role": "user", "content": "hi"}]}
                headers = {"api-key": key}
                codes = [
                    requests.post(url, headers=headers, json=body, timeout=30).status_code
                    for _ in range(4)
                ]
            finally:
                gateway.stop()
            asked = [(r.get("resource"), r.get("client_id")) for r in identity.token_requests]
        assert codes == [200, 200, 200, 429]
        assert ("https://redis.azure.com", CLIENT_ID) in asked
        assert private.client().keys("tg:{app}:s:rpm")
    finally:
        private.stop()
