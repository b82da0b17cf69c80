"""Who may read the gateway's own pages (`/metrics`, `/status`): a caller from the networks
TOLLGATE_METRICS_NETWORKS names (loopback by default), one presenting the admin key
(`Authorization: Bearer <key>`, the key kept in the secret store under
TOLLGATE_ADMIN_KEY_SECRET), or, when the gateway accepts Entra ID tokens, an app whose token
carries the TOLLGATE_ADMIN_ROLE app role. Gateway keys never open them."""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable

from starlette.requests import Request

from shared.errors import forbidden, not_found
from shared.gateway import Gateway, get_gateway
from shared.protection.client_ip import client_ip
from shared.settings import Settings

log = logging.getLogger("tollgate.access")
ENTRA_SECONDS = 3.0  # validating a token may fetch the tenant's signing keys


async def operator_gateway(
    request: Request, served: Callable[[Settings], bool], unserved: str
) -> Gateway:
    """The gateway, when the page is served (else 404 saying `unserved`) and the caller is one
    of its operators (else 403)."""
    gateway = get_gateway()
    if not served(gateway.settings):
        raise not_found(unserved, "not_found")
    await admit_admin(request, gateway)
    return gateway


async def admit_admin(request: Request, gateway: Gateway) -> None:
    peer = request.client.host if request.client else None
    address = client_ip(peer, request.headers.get("x-forwarded-for"), gateway.proxies)
    if gateway.admins is not None and gateway.admins.allows(address):
        return
    if await _admin_key(request, gateway) or await _entra_admin(request, gateway):
        return
    raise forbidden("This page is for the gateway's operators only.", "admin_only")


async def _admin_key(request: Request, gateway: Gateway) -> bool:
    name = gateway.settings.admin_key_secret
    token = _bearer(request)
    if not name or not token:
        return False
    try:
        expected = await gateway.secrets.get(name)
    except Exception as exc:  # an admin page is refused, never an error that names the store
        log.error("admin key could not be read (%s)", type(exc).__name__)
        return False
    return bool(expected) and hmac.compare_digest(token.encode(), expected.encode())


async def _entra_admin(request: Request, gateway: Gateway) -> bool:
    token = _bearer(request)
    if gateway.entra is None or token.count(".") != 2:
        return False
    try:
        async with asyncio.timeout(ENTRA_SECONDS):
            claims = await gateway.entra.validate(token)
    except Exception as exc:  # refused, never an error: its reason is for the caller's calls
        log.info("admin page: Entra ID token not accepted (%s)", type(exc).__name__)
        return False
    return gateway.settings.admin_role in claims.roles


def _bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""
