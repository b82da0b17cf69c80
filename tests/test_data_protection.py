"""Who may call, from where: Entra ID app tokens mapped to systems, and network allow-lists
through trusted proxies, on a live gateway."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import SIM_KEY, Live
from tests.support.jwks_server import JwksServer
from tests.support.keyvault_standin import write_self_signed_cert
from tests.support.processes import Service, start_gateway, tollgate
from tests.support.rig import gateway_rig

TENANT = "6f1c3a2b-0000-4000-8000-00000000aaaa"
AUDIENCE = "api://tollgate"
APP = "1b2c3d4e-0000-4000-8000-0000000000c1"
CHAT = {"messages": [{"role": "user", "content": "hi"}]}


def token(key: rsa.RSAPrivateKey, kid: str, **claims: Any) -> str:
    now = int(time.time())
    body = {
        "iss": f"https://login.microsoftonline.com/{TENANT}/v2.0",
        "aud": AUDIENCE,
        "tid": TENANT,
        "azp": APP,
        "oid": str(uuid.uuid4()),
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "roles": [],
        **claims,
    }
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": kid})


@pytest.fixture
async def rig(live: Live, tmp_path: Path) -> AsyncIterator[tuple[Service, rsa.RSAPrivateKey, str]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    cert, cert_key = write_self_signed_cert(tmp_path)
    server = JwksServer([{**jwk, "kid": "k1", "use": "sig"}], tls=(cert, cert_key))
    await server.start()
    env = {
        "TOLLGATE_REGISTRY": str(tmp_path / "systems.json"),
        "TOLLGATE_SIMULATOR_URL": live.simulator.url,
        "TOLLGATE_SECRET_SIMULATOR_KEY": SIM_KEY,
        "TOLLGATE_ENTRA_TENANT_ID": TENANT,
        "TOLLGATE_ENTRA_AUDIENCES": AUDIENCE,
        "TOLLGATE_ENTRA_JWKS_URL": server.url,
        "SSL_CERT_FILE": str(cert),  # trust the local key server; verification stays on
        "TOLLGATE_TRUSTED_PROXIES": "127.0.0.1/32,::1/128",
        "TOLLGATE_ALLOWED_NETWORKS": "203.0.113.0/24,2001:db8::/32",
    }
    assert tollgate("systems", "create", "claims", "--models", "*", env=env).returncode == 0
    update = [
        "systems",
        "update",
        "claims",
        "--entra-app-ids",
        APP,
        "--allowed-networks",
        "203.0.113.0/25,2001:db8::/48",
    ]
    assert tollgate(*update, env=env).returncode == 0
    gateway = start_gateway(env, tmp_path / "gateway.log")
    try:
        yield gateway, key, server.url
    finally:
        gateway.stop()
        await server.stop()


async def call(gateway: Service, bearer: str, forwarded: str) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {bearer}", "X-Forwarded-For": forwarded}
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{gateway.url}/v1/chat/completions", headers=headers, json={**CHAT, "model": "gpt-4o"}
        ) as resp,
    ):
        return resp.status, await resp.json()


async def test_an_entra_app_token_acts_as_its_mapped_system(rig: Any) -> None:
    gateway, key, _ = rig
    status, body = await call(gateway, token(key, "k1"), "203.0.113.9")
    assert status == 200, body
    assert body["object"] == "chat.completion"


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        ({"aud": "api://someone-else"}, "invalid_token"),
        ({"exp": int(time.time()) - 3600}, "invalid_token"),
        ({"tid": "00000000-0000-4000-8000-000000000000"}, "invalid_token"),
        ({"azp": "unmapped-app"}, "identity_not_mapped"),
    ],
)
async def test_bad_or_unmapped_tokens_are_refused(
    rig: Any, claims: dict[str, Any], code: str
) -> None:
    gateway, key, _ = rig
    status, body = await call(gateway, token(key, "k1", **claims), "203.0.113.9")
    assert (status, body["error"]["code"]) == (401, code)


async def test_a_token_signed_by_another_key_is_refused(rig: Any) -> None:
    gateway, _, _ = rig
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    status, body = await call(gateway, token(stranger, "k1"), "203.0.113.9")
    assert (status, body["error"]["code"]) == (401, "invalid_token")


@pytest.mark.parametrize(
    ("forwarded", "allowed"),
    [
        ("203.0.113.9", True),  # inside both lists
        ("203.0.113.200", False),  # the gateway allows it, the system does not
        ("198.51.100.7", False),  # outside the gateway's list
        ("203.0.113.9, 198.51.100.7", False),  # a forged left entry changes nothing
        ("2001:db8::5", True),
        ("[2001:db8:1::5]:443", False),
    ],
)
async def test_allow_lists_through_trusted_proxies(rig: Any, forwarded: str, allowed: bool) -> None:
    gateway, key, _ = rig
    status, body = await call(gateway, token(key, "k1"), forwarded)
    if allowed:
        assert status == 200, body
    else:
        assert (status, body["error"]["code"]) == (403, "network_not_allowed")


def test_an_untrusted_peer_cannot_pose_as_another_address(live: Live, tmp_path: Path) -> None:
    """With no trusted proxies, the peer's own address counts, whatever X-Forwarded-For says;
    the local host must not take the header's word for it before the gateway's own check."""
    settings = {"TOLLGATE_ALLOWED_NETWORKS": "127.0.0.0/8,::1/128"}
    with gateway_rig(tmp_path, settings, simulator=live.simulator) as rig:
        url = f"{rig.gateway.url}/gateway/chat/completions/gpt-4o"
        body = {"messages": [{"role": "user", "content": "hi"}]}
        headers = {"api-key": rig.key, "X-Forwarded-For": "203.0.113.9"}
        answer = requests.post(url, headers=headers, json=body, timeout=30)
    assert answer.status_code == 200, answer.text
