"""Who may read the gateway's own pages (`/metrics`): a caller from the networks
TOLLGATE_METRICS_NETWORKS names (loopback by default), or one presenting the admin key
(`Authorization: Bearer <key>`, the key kept in the secret store under
TOLLGATE_ADMIN_KEY_SECRET). Gateway keys never open them."""

from __future__ import annotations

import hmac
import logging

from starlette.requests import Request

from shared.errors import forbidden
from shared.gateway import Gateway
from shared.protection.client_ip import client_ip

log = logging.getLogger("tollgate.access")


async def admit_admin(request: Request, gateway: Gateway) -> None:
    peer = request.client.host if request.client else None
    address = client_ip(peer, request.headers.get("x-forwarded-for"), gateway.proxies)
    if gateway.admins is not None and gateway.admins.allows(address):
        return
    if await _admin_key(request, gateway):
        return
    raise forbidden("This page is for the gateway's operators only.", "admin_only")


async def _admin_key(request: Request, gateway: Gateway) -> bool:
    name = gateway.settings.admin_key_secret
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if not name or scheme.lower() != "bearer" or not token.strip():
        return False
    try:
        expected = await gateway.secrets.get(name)
    except Exception as exc:  # an admin page is refused, never an error that names the store
        log.error("admin key could not be read (%s)", type(exc).__name__)
        return False
    return bool(expected) and hmac.compare_digest(token.strip().encode(), expected.encode())
